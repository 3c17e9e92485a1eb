#include "path_collision.h"

#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace aers::daemon {

std::string PathCollision(const std::vector<PathUse>& files) {
  std::vector<std::string> keys;
  for (const PathUse& f : files) {
    struct stat st {};
    std::error_code ec;
    if (f.path.empty()) {
      keys.emplace_back();
      continue;
    }
    if (f.written && f.path.back() == '/') {
      return absl::StrCat(f.flag, " ", f.path,
                          ": ends in '/', a directory; give the path of a file");
    }
    if (::stat(f.path.c_str(), &st) == 0) {
      keys.push_back(absl::StrCat("inode ", st.st_dev, ":", st.st_ino));
    } else {
      keys.push_back(std::filesystem::weakly_canonical(std::filesystem::absolute(f.path, ec), ec)
                         .lexically_normal()
                         .string());
    }
  }
  for (size_t i = 0; i < files.size(); ++i) {
    for (size_t j = i + 1; j < files.size(); ++j) {
      if (!keys[i].empty() && keys[i] == keys[j] && (files[i].written || files[j].written)) {
        return absl::StrCat(files[i].flag, " ", files[i].path, " and ", files[j].flag, " ",
                            files[j].path,
                            " are the same file: one would overwrite the other; give each its "
                            "own path");
      }
    }
  }
  return "";
}

}  // namespace aers::daemon
