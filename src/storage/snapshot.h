// Snapshots: the whole state at a journal position, in one file written
// atomically (temporary file, fsync, read back and verified, rename, fsync
// of the directory).
//
// File: DIR/snapshot-<position>.pb = "GRDSNP02", a salt, then numbered,
// checksummed records (storage/record_format.h): a v1::SnapshotHeader, one
// v1::SeriesState per series, v1::ProducerChunk records, and a
// v1::SnapshotEnd counting what came before it. No record grows with the
// state, so a snapshot has no size ceiling (protobuf refuses single
// messages over 2 GiB).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "gradientd/v1/journal.pb.h"
#include "storage/file_system.h"

namespace gradientd::storage {

inline constexpr std::string_view kSnapshotMagic = "GRDSNP02";

std::string SnapshotFileName(uint64_t position);

// Writes snapshot-<journal_position>.pb and returns only once it is durable
// and has been read back whole; on any failure nothing is left behind.
Status WriteSnapshot(FileSystem& fs, const std::string& dir, const v1::Snapshot& snapshot);

// Reads a snapshot a part at a time, so that memory does not grow with the
// file: consume() gets the header's fields in the first part, then parts of
// series and producers, in order. Errors name the file, the byte offset and
// what is wrong (an incomplete file is an error, never a smaller state);
// on an error, what consume() has been given is not a snapshot.
Status ReadSnapshot(FileSystem& fs, const std::string& path,
                    const std::function<void(v1::Snapshot&& part)>& consume);
// The whole snapshot at once.
Status ReadSnapshot(FileSystem& fs, const std::string& path, v1::Snapshot* snapshot);

}  // namespace gradientd::storage
