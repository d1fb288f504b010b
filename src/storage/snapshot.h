// Snapshots: the whole state at a journal position, in one file written
// atomically (temporary file, fsync, rename, fsync the directory).
// File: DIR/snapshot-<position>.pb = "GRDSNP01" + one checksummed record
// (storage/record_format.h) holding a v1::Snapshot.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "gradientd/v1/journal.pb.h"
#include "storage/file_system.h"

namespace gradientd::storage {

inline constexpr std::string_view kSnapshotMagic = "GRDSNP01";

std::string SnapshotFileName(uint64_t position);

Status WriteSnapshot(FileSystem& fs, const std::string& dir, const v1::Snapshot& snapshot);

// Errors name the file and what is wrong with it.
Status ReadSnapshot(FileSystem& fs, const std::string& path, v1::Snapshot* snapshot);

}  // namespace gradientd::storage
