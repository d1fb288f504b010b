#include "service/sequence_window.h"

#include <algorithm>
#include <bit>

namespace gradientd::service {

SequenceWindow::Seen SequenceWindow::Check(uint64_t sequence) const {
  if (sequence > highest_) return Seen::kNew;
  const uint64_t d = highest_ - sequence;
  if (d == 0) return Seen::kApplied;
  if (d > width_) return Seen::kBelowWindow;
  return Dense() || Bit(d) ? Seen::kApplied : Seen::kNew;
}

void SequenceWindow::Mark(uint64_t sequence) {
  if (sequence <= highest_) {
    // Filling a hole below the highest.
    if (!Dense()) {
      SetBit(highest_ - sequence);
      CompactIfFull();
    }
    return;
  }
  const uint64_t shift = sequence - highest_;
  // The common case: the next sequence, nothing missing.
  if (shift == 1 && Dense()) {
    highest_ = sequence;
    return;
  }
  const bool had_highest = highest_ > 0;
  if (Dense()) applied_.assign(width_ / 64, ~uint64_t{0});
  ShiftUp(shift);
  highest_ = sequence;
  if (had_highest && shift <= width_) SetBit(shift);  // the old highest
  MarkNonPositive();
  CompactIfFull();
}

void SequenceWindow::ShiftUp(uint64_t shift) {
  const uint64_t words = applied_.size();
  if (shift >= width_) {
    std::fill(applied_.begin(), applied_.end(), 0);
    return;
  }
  const uint64_t word_shift = shift / 64;
  const unsigned bit_shift = shift % 64;
  for (uint64_t i = words; i-- > 0;) {
    uint64_t value = 0;
    if (i >= word_shift) {
      value = applied_[i - word_shift] << bit_shift;
      if (bit_shift != 0 && i > word_shift)
        value |= applied_[i - word_shift - 1] >> (64 - bit_shift);
    }
    applied_[i] = value;
  }
}

void SequenceWindow::MarkNonPositive() {
  // Sequence highest - d is at most 0 for d >= highest: bits from
  // highest - 1 to the top.
  if (highest_ > width_) return;
  const uint64_t first = std::max<uint64_t>(highest_, 1) - 1;
  applied_[first / 64] |= ~uint64_t{0} << (first % 64);
  for (uint64_t word = first / 64 + 1; word < applied_.size(); ++word) {
    applied_[word] = ~uint64_t{0};
  }
}

void SequenceWindow::CompactIfFull() {
  for (const uint64_t word : applied_) {
    if (word != ~uint64_t{0}) return;
  }
  applied_.clear();
  applied_.shrink_to_fit();
}

void SequenceWindow::Clear() {
  highest_ = 0;
  applied_.clear();
  applied_.shrink_to_fit();
}

std::string SequenceWindow::AppliedBelow() const {
  std::string bytes;
  if (Dense()) return bytes;
  bytes.resize(width_ / 8);
  for (uint64_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>((applied_[i / 8] >> (8 * (i % 8))) & 0xff);
  }
  return bytes;
}

void SequenceWindow::Restore(uint64_t highest, const std::string& applied_below) {
  Clear();
  highest_ = highest;
  if (applied_below.empty() || highest == 0) return;
  applied_.assign(width_ / 64, ~uint64_t{0});  // beyond the bytes: applied
  const uint64_t bytes = std::min<uint64_t>(applied_below.size(), width_ / 8);
  for (uint64_t i = 0; i < bytes; ++i) {
    uint64_t& word = applied_[i / 8];
    const unsigned at = 8 * (i % 8);
    word &= ~(uint64_t{0xff} << at);
    word |= uint64_t{static_cast<unsigned char>(applied_below[i])} << at;
  }
  MarkNonPositive();
  CompactIfFull();
}

}  // namespace gradientd::service
