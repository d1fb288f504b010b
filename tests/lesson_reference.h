// References the core numerics are tested against.
//
// 1. lesson::get_gradient_at_b / get_gradient_at_m / step_gradient: a
//    literal, loop-for-loop transcription of the intro linear-regression
//    lesson. Deliberately naive (one pass, plain double accumulation), so
//    it is the behaviour users expect, not an accuracy oracle.
//
// 2. lesson::ExactReference: the same quantities computed exactly with
//    boost::multiprecision::cpp_rational. Every double is a dyadic rational,
//    so converting the data and (m, b) to rationals is exact, and so is all
//    arithmetic after that; only the final conversion to double rounds (once,
//    to nearest). Because the arithmetic is exact, the power-sum formulas
//    below are identities here (in doubles they would cancel
//    catastrophically, which is exactly what the code under test avoids).
#pragma once

#include <array>
#include <boost/multiprecision/cpp_int.hpp>
#include <cstddef>
#include <optional>
#include <span>
#include <vector>

namespace lesson {

// ---------------------------------------------------------------------------
// The lesson's loops, transcribed literally.

inline double get_gradient_at_b(std::span<const double> x, std::span<const double> y, double m,
                                double b) {
  double diff = 0;
  const std::size_t N = x.size();
  for (std::size_t i = 0; i < N; ++i) {
    const double y_val = y[i];
    const double x_val = x[i];
    diff += (y_val - ((m * x_val) + b));
  }
  const double b_gradient = -(2.0 / static_cast<double>(N)) * diff;
  return b_gradient;
}

inline double get_gradient_at_m(std::span<const double> x, std::span<const double> y, double m,
                                double b) {
  double diff = 0;
  const std::size_t N = x.size();
  for (std::size_t i = 0; i < N; ++i) {
    const double y_val = y[i];
    const double x_val = x[i];
    diff += x_val * (y_val - ((m * x_val) + b));
  }
  const double m_gradient = -(2.0 / static_cast<double>(N)) * diff;
  return m_gradient;
}

// Returns [b, m], as the lesson does.
inline std::array<double, 2> step_gradient(std::span<const double> x, std::span<const double> y,
                                           double b_current, double m_current,
                                           double learning_rate) {
  const double b_gradient = get_gradient_at_b(x, y, m_current, b_current);
  const double m_gradient = get_gradient_at_m(x, y, m_current, b_current);
  const double b = b_current - (learning_rate * b_gradient);
  const double m = m_current - (learning_rate * m_gradient);
  return {b, m};
}

// ---------------------------------------------------------------------------
// Exact reference.

using Rational = boost::multiprecision::cpp_rational;

// Exact: every finite double is a rational.
inline Rational Exact(double v) { return Rational(v); }

// Correctly rounded to the nearest double.
inline double ToDouble(const Rational& r) { return r.convert_to<double>(); }

inline Rational Abs(const Rational& r) { return r < 0 ? Rational(-r) : r; }

// |got - exact| / |exact|, evaluated exactly and rounded at the end.
// REQUIRES: exact != 0.
inline double RelativeError(double got, const Rational& exact) {
  return ToDouble(Abs(Exact(got) - exact) / Abs(exact));
}

// |got - exact| / scale. REQUIRES: scale > 0.
inline double ScaledError(double got, const Rational& exact, const Rational& scale) {
  return ToDouble(Abs(Exact(got) - exact) / scale);
}

class ExactReference {
 public:
  // The data exactly as the doubles given.
  ExactReference(std::span<const double> x, std::span<const double> y) {
    std::vector<Rational> rx, ry;
    rx.reserve(x.size());
    ry.reserve(y.size());
    for (double v : x) rx.push_back(Exact(v));
    for (double v : y) ry.push_back(Exact(v));
    Init(rx, ry);
  }
  // Data given as rationals (e.g. the exact decimals of a published data
  // set, which doubles only approximate).
  ExactReference(const std::vector<Rational>& x, const std::vector<Rational>& y) { Init(x, y); }

  std::size_t n() const { return n_; }
  Rational MeanX() const { return sx_ / N(); }
  Rational MeanY() const { return sy_ / N(); }
  Rational MeanXX() const { return sxx_ / N(); }  // E[x^2]
  Rational MeanXY() const { return sxy_ / N(); }  // E[x*y]
  Rational VarX() const { return (N() * sxx_ - sx_ * sx_) / (N() * N()); }
  Rational VarY() const { return (N() * syy_ - sy_ * sy_) / (N() * N()); }
  Rational CovXY() const { return (N() * sxy_ - sx_ * sy_) / (N() * N()); }

  // dL/db = -2/N * sum(y - (m*x + b)).
  Rational GradientB(const Rational& m, const Rational& b) const {
    return Rational(-2) / N() * (sy_ - m * sx_ - N() * b);
  }
  // dL/dm = -2/N * sum(x * (y - (m*x + b))).
  Rational GradientM(const Rational& m, const Rational& b) const {
    return Rational(-2) / N() * (sxy_ - m * sxx_ - b * sx_);
  }
  // L = 1/N * sum((y - (m*x + b))^2).
  Rational Loss(const Rational& m, const Rational& b) const {
    return (syy_ - 2 * m * sxy_ - 2 * b * sy_ + m * m * sxx_ + 2 * m * b * sx_ + N() * b * b) / N();
  }
  double GradientBAt(double m, double b) const { return ToDouble(GradientB(Exact(m), Exact(b))); }
  double GradientMAt(double m, double b) const { return ToDouble(GradientM(Exact(m), Exact(b))); }
  double LossAt(double m, double b) const { return ToDouble(Loss(Exact(m), Exact(b))); }

  struct Line {
    Rational m;
    Rational b;
    Rational loss;  // the mean squared residual of the line
  };
  // The least-squares line; nullopt when x has no spread.
  std::optional<Line> LeastSquares() const {
    const Rational sxx_c = N() * sxx_ - sx_ * sx_;
    if (n_ == 0 || sxx_c == 0) return std::nullopt;
    Line line;
    line.m = (N() * sxy_ - sx_ * sy_) / sxx_c;
    line.b = (sy_ - line.m * sx_) / N();
    line.loss = Loss(line.m, line.b);
    return line;
  }
  // R^2 of the least-squares line; nullopt when x or y has no spread.
  std::optional<Rational> RSquared() const {
    const Rational cxx = N() * sxx_ - sx_ * sx_;
    const Rational cyy = N() * syy_ - sy_ * sy_;
    if (n_ == 0 || cxx == 0 || cyy == 0) return std::nullopt;
    const Rational cxy = N() * sxy_ - sx_ * sy_;
    return cxy * cxy / (cxx * cyy);
  }

 private:
  Rational N() const { return Rational(static_cast<unsigned long long>(n_)); }

  void Init(const std::vector<Rational>& x, const std::vector<Rational>& y) {
    n_ = x.size();
    for (std::size_t i = 0; i < n_; ++i) {
      sx_ += x[i];
      sy_ += y[i];
      sxx_ += x[i] * x[i];
      sxy_ += x[i] * y[i];
      syy_ += y[i] * y[i];
    }
  }

  std::size_t n_ = 0;
  Rational sx_, sy_, sxx_, sxy_, syy_;
};

}  // namespace lesson
