#include "core/exp2.h"

#include <mpfr.h>

namespace gradientd::core {

double CorrectlyRoundedExp2(double x) {
  MPFR_DECL_INIT(value, 53);        // on the stack: no allocation
  mpfr_set_d(value, x, MPFR_RNDN);  // exact: 53 bits hold any double
  mpfr_exp2(value, value, MPFR_RNDN);
  return mpfr_get_d(value, MPFR_RNDN);
}

}  // namespace gradientd::core
