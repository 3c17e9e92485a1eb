// aers-plugin: hash, keygen, sign and verify AERS plugin directories.
//
//   aers-plugin hash DIR [--algorithm sha256|blake2b] [--write]
//   aers-plugin keygen -p KEY.pub -s KEY.sec [-f]
//   aers-plugin sign DIR -s KEY.sec [-t TRUSTED_COMMENT] [--legacy]
//   aers-plugin verify DIR -p KEY.pub
//
// Keys and signatures are minisign's formats: `minisign -V -p KEY.pub -m
// DIR/manifest.yaml` verifies what `sign` writes, and `verify` accepts
// signatures made with `minisign -S`.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "plugin/tool.h"

namespace {

int Usage() {
  std::fputs(
      "usage:\n"
      "  aers-plugin hash DIR [--algorithm sha256|blake2b] [--write]\n"
      "  aers-plugin keygen -p KEY.pub -s KEY.sec [-f]\n"
      "  aers-plugin sign DIR -s KEY.sec [-t TRUSTED_COMMENT] [--legacy]\n"
      "  aers-plugin verify DIR -p KEY.pub\n",
      stderr);
  return 2;
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "aers-plugin: %s\n", std::string(s.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace aers::plugin;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return Usage();
  const std::string cmd = args[0];
  std::string dir, pub, sec, comment;
  std::optional<HashAlgorithm> algorithm;
  bool write = false, force = false, legacy = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    if (a == "-p") {
      if (!value(pub)) return Usage();
    } else if (a == "-s") {
      if (!value(sec)) return Usage();
    } else if (a == "-t") {
      if (!value(comment)) return Usage();
    } else if (a == "--algorithm") {
      std::string v;
      if (!value(v)) return Usage();
      if (v == "sha256") {
        algorithm = HashAlgorithm::kSha256;
      } else if (v == "blake2b") {
        algorithm = HashAlgorithm::kBlake2b;
      } else {
        return Usage();
      }
    } else if (a == "--write") {
      write = true;
    } else if (a == "-f") {
      force = true;
    } else if (a == "--legacy" || a == "-l") {
      legacy = true;
    } else if (!a.empty() && a[0] != '-' && dir.empty()) {
      dir = a;
    } else {
      return Usage();
    }
  }

  if (cmd == "hash") {
    if (dir.empty()) return Usage();
    auto r = tool::Hash(dir, algorithm, write);
    if (!r.ok()) return Fail(r.status());
    std::printf("%s:%s  %s\n", std::string(HashAlgorithmName(r->algorithm)).c_str(), r->hex.c_str(),
                r->module_path.c_str());
    if (!r->matches) {
      std::fprintf(stderr, "aers-plugin: manifest.yaml says %s (run with --write to update it)\n",
                   r->manifest_hex.c_str());
      return 1;
    }
    return 0;
  }
  if (cmd == "keygen") {
    if (pub.empty() || sec.empty() || !dir.empty()) return Usage();
    auto id = tool::KeyGen(pub, sec, force);
    if (!id.ok()) return Fail(id.status());
    std::printf("key %s: public key %s, secret key %s (unencrypted: keep it safe)\n", id->c_str(),
                pub.c_str(), sec.c_str());
    return 0;
  }
  if (cmd == "sign") {
    if (dir.empty() || sec.empty()) return Usage();
    auto path = tool::Sign(dir, sec, comment, legacy);
    if (!path.ok()) return Fail(path.status());
    std::printf("wrote %s\n", path->c_str());
    return 0;
  }
  if (cmd == "verify") {
    if (dir.empty() || pub.empty()) return Usage();
    auto report = tool::Verify(dir, pub);
    if (!report.ok()) return Fail(report.status());
    std::fputs(report->c_str(), stdout);
    return 0;
  }
  return Usage();
}
