#include "path_collision.h"

#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace aers::daemon {

std::string PathCollision(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<std::string> keys;
  for (const auto& [flag, path] : files) {
    struct stat st {};
    std::error_code ec;
    if (path.empty()) {
      keys.emplace_back();
    } else if (::stat(path.c_str(), &st) == 0) {
      keys.push_back(absl::StrCat("inode ", st.st_dev, ":", st.st_ino));
    } else {
      keys.push_back(std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec)
                         .lexically_normal()
                         .string());
    }
  }
  for (size_t i = 0; i < files.size(); ++i) {
    for (size_t j = i + 1; j < files.size(); ++j) {
      if (!keys[i].empty() && keys[i] == keys[j]) {
        return absl::StrCat(files[i].first, " ", files[i].second, " and ", files[j].first, " ",
                            files[j].second,
                            " are the same file: one would overwrite the other; give each its "
                            "own path");
      }
    }
  }
  return "";
}

}  // namespace aers::daemon
