// SequenceWindow: which sequences of one exactly-once producer were
// applied, so that a batch retried after later ones (on another connection,
// or another node) is applied once and not taken for a duplicate.
//
// It holds the highest sequence applied and, for the `width` sequences
// below it, whether each was applied: a bitmap, kept only while one of them
// is missing (a producer that sends 1, 2, 3, ... needs none). A sequence
// more than `width` below the highest can no longer be told apart and is
// taken as applied (Seen::kBelowWindow). Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gradientd::service {

class SequenceWindow {
 public:
  // `width`: a positive multiple of 64.
  explicit SequenceWindow(uint64_t width) : width_(width) {}

  enum class Seen {
    kNew,          // not applied: apply it, then Mark it
    kApplied,      // applied before
    kBelowWindow,  // more than width below the highest: taken as applied
  };
  // For a sequence > 0.
  Seen Check(uint64_t sequence) const;
  // Records `sequence` (> 0, Check(sequence) == kNew) as applied.
  void Mark(uint64_t sequence);
  // Forgets every sequence (the producer expired).
  void Clear();

  uint64_t highest() const { return highest_; }

  // For snapshots: bit i (byte i / 8, bit i % 8 from the least significant)
  // says whether sequence highest - 1 - i was applied; empty when all of
  // the window's were.
  std::string AppliedBelow() const;
  // The inverse; a bitmap of another width is cut, or extended with
  // applied sequences (so a narrower window never applies a batch twice).
  void Restore(uint64_t highest, const std::string& applied_below);

 private:
  bool Dense() const { return applied_.empty(); }
  // Bit d - 1 is sequence highest - d, for d in 1..width.
  bool Bit(uint64_t d) const { return (applied_[(d - 1) / 64] >> ((d - 1) % 64)) & 1; }
  void SetBit(uint64_t d) { applied_[(d - 1) / 64] |= uint64_t{1} << ((d - 1) % 64); }
  // Moves the highest up by `shift`: every offset grows by it.
  void ShiftUp(uint64_t shift);
  // Sequences at or below 0 do not exist: they count as applied.
  void MarkNonPositive();
  // Drops the bitmap once every sequence in it is applied.
  void CompactIfFull();

  uint64_t width_;
  uint64_t highest_ = 0;
  std::vector<uint64_t> applied_;  // width / 64 words, or empty: all applied
};

}  // namespace gradientd::service
