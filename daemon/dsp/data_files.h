// Where node kinds read their data files from: impulse responses
// (`convolver.ir_file`), parametric EQ text. A file parameter is a path
// relative to the base directory (the config file's directory) or an
// absolute path; either way the file it resolves to, symlinks followed, must
// lie beneath one of the allowed directories, so that a control client cannot
// make the daemon read files it has no business reading.
//
// Thread: non-real-time (file system calls).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace aers::dsp {

struct DataDirs {
  /// Relative paths resolve against this directory ("" = the working
  /// directory).
  std::filesystem::path base;
  /// Files must resolve beneath one of these (canonical form compared,
  /// component-wise). Empty: any path is allowed (tools and tests only; the
  /// daemon always sets the config file's directory and --data_dir).
  std::vector<std::filesystem::path> allowed;
};

/// Where node data files come from for a daemon or render run on
/// `config_path`: relative paths against the config file's directory, which
/// is allowed together with `data_dirs` (--data_dir).
DataDirs DataDirsFor(const std::string& config_path, const std::vector<std::string>& data_dirs);

/// A data file ready to be opened: its canonical path and size in bytes.
struct DataFile {
  std::filesystem::path path;
  uint64_t size_bytes = 0;
};

/// Opens a resolved data file for reading without blocking (a FIFO or device
/// swapped in after ResolveDataFile is refused, not waited on): O_NONBLOCK
/// open, then fstat must show a regular file. The caller owns the
/// descriptor (close-on-exec). Errors name `shown_as`.
absl::StatusOr<int> OpenDataFile(const DataFile& file, const std::string& shown_as);

/// Reads a whole resolved data file (at most `max_bytes`) through
/// OpenDataFile.
absl::StatusOr<std::string> ReadDataFile(const DataFile& file, const std::string& shown_as,
                                         uint64_t max_bytes);

/// Resolves a file parameter's value. Errors (InvalidArgument or NotFound),
/// each naming the value: no such file, not a regular file (a directory, a
/// device, a FIFO), outside the allowed directories (which are listed),
/// larger than `max_bytes`, or not readable.
absl::StatusOr<DataFile> ResolveDataFile(const DataDirs& dirs, const std::string& value,
                                         uint64_t max_bytes);

}  // namespace aers::dsp
