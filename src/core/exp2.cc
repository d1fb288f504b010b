#include "core/exp2.h"

#include <mpfr.h>

namespace gradientd::core {
namespace {

// MPFR caches constants (log 2) per thread; they are freed when the thread
// ends, not left for the leak checker.
struct FreeMpfrCacheAtThreadExit {
  ~FreeMpfrCacheAtThreadExit() { mpfr_free_cache2(MPFR_FREE_LOCAL_CACHE); }
};

}  // namespace

double CorrectlyRoundedExp2(double x) {
  thread_local FreeMpfrCacheAtThreadExit free_cache_at_exit;
  (void)free_cache_at_exit;
  MPFR_DECL_INIT(value, 53);        // on the stack: no allocation
  mpfr_set_d(value, x, MPFR_RNDN);  // exact: 53 bits hold any double
  mpfr_exp2(value, value, MPFR_RNDN);
  return mpfr_get_d(value, MPFR_RNDN);
}

}  // namespace gradientd::core
