#include "control/request_check.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "control/utf8.h"

namespace aers::control {

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Fields that carry a whole document rather than a name.
bool IsLongText(const FieldDescriptor* field) {
  return field->full_name() == "aers.v1.ApplyGraphRequest.yaml";
}

std::string Join(const std::string& path, const std::string& name) {
  return path.empty() ? name : absl::StrCat(path, ".", name);
}

// Map keys for paths: printable and short, whatever the request held.
std::string KeyForPath(const std::string& key) {
  std::string out;
  for (char c : key.substr(0, 32)) out += (c >= 0x20 && c < 0x7f && c != '"') ? c : '?';
  if (key.size() > 32) out += "...";
  return out;
}

class Checker {
 public:
  explicit Checker(const RequestLimits& limits) : limits_(limits) {}

  absl::Status Check(const Message& m, const std::string& path) {
    const google::protobuf::Descriptor* d = m.GetDescriptor();
    const google::protobuf::Reflection* r = m.GetReflection();
    for (int o = 0; o < d->real_oneof_decl_count(); ++o) {
      // Real oneofs come first; proto3 `optional` fields are synthetic ones.
      const google::protobuf::OneofDescriptor* oneof = d->oneof_decl(o);
      if (r->GetOneofFieldDescriptor(m, oneof) == nullptr) {
        std::string choices;
        for (int f = 0; f < oneof->field_count(); ++f) {
          absl::StrAppend(&choices, f ? ", " : "", oneof->field(f)->name());
        }
        return absl::InvalidArgumentError(
            absl::StrCat(Join(path, oneof->name()), ": not set; give one of: ", choices));
      }
    }
    for (int f = 0; f < d->field_count(); ++f) {
      const FieldDescriptor* field = d->field(f);
      const std::string fpath = Join(path, field->name());
      if (field->is_repeated()) {
        const int n = r->FieldSize(m, field);
        if (static_cast<size_t>(n) > limits_.max_repeated) {
          return absl::InvalidArgumentError(absl::StrCat(fpath, ": ", n, " entries; at most ",
                                                         limits_.max_repeated, " are accepted"));
        }
        for (int i = 0; i < n; ++i) {
          if (auto st = Element(m, field, i, fpath); !st.ok()) return st;
        }
      } else if (!field->has_presence() || r->HasField(m, field)) {
        if (auto st = Element(m, field, -1, fpath); !st.ok()) return st;
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Element(const Message& m, const FieldDescriptor* field, int index,
                       const std::string& fpath) {
    const google::protobuf::Reflection* r = m.GetReflection();
    const bool rep = index >= 0;
    const std::string path = rep && !field->is_map() ? absl::StrCat(fpath, "[", index, "]") : fpath;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        const double v =
            field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE
                ? (rep ? r->GetRepeatedDouble(m, field, index) : r->GetDouble(m, field))
                : static_cast<double>(rep ? r->GetRepeatedFloat(m, field, index)
                                          : r->GetFloat(m, field));
        if (!std::isfinite(v)) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": ", std::isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf"),
                           " is not accepted; give a finite number"));
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        const std::string v = rep ? r->GetRepeatedString(m, field, index) : r->GetString(m, field);
        const size_t limit = IsLongText(field) ? limits_.max_text_bytes : limits_.max_string_bytes;
        if (v.size() > limit) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": ", v.size(), " bytes; at most ", limit, " are accepted"));
        }
        if (field->type() == FieldDescriptor::TYPE_STRING && !IsValidUtf8(v)) {
          return absl::InvalidArgumentError(absl::StrCat(path, ": not valid UTF-8"));
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        const Message& sub = rep ? r->GetRepeatedMessage(m, field, index) : r->GetMessage(m, field);
        if (field->is_map()) {
          // A map entry: name it by its key.
          const FieldDescriptor* key = sub.GetDescriptor()->map_key();
          const FieldDescriptor* value = sub.GetDescriptor()->map_value();
          const google::protobuf::Reflection* sr = sub.GetReflection();
          std::string key_text = key->cpp_type() == FieldDescriptor::CPPTYPE_STRING
                                     ? sr->GetString(sub, key)
                                     : std::to_string(index);
          const std::string epath = absl::StrCat(fpath, "[\"", KeyForPath(key_text), "\"]");
          if (key_text.size() > limits_.max_string_bytes) {
            return absl::InvalidArgumentError(
                absl::StrCat(fpath, ": a key of ", key_text.size(), " bytes; at most ",
                             limits_.max_string_bytes, " are accepted"));
          }
          if (!IsValidUtf8(key_text)) {
            return absl::InvalidArgumentError(absl::StrCat(fpath, ": a key is not valid UTF-8"));
          }
          if (value->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
            if (!sr->HasField(sub, value)) {
              return absl::InvalidArgumentError(absl::StrCat(epath, ": no value"));
            }
            return Check(sr->GetMessage(sub, value), epath);
          }
          return Element(sub, value, -1, epath);
        }
        return Check(sub, path);
      }
      default:
        return absl::OkStatus();
    }
  }

  const RequestLimits& limits_;
};

}  // namespace

absl::Status CheckRequest(const Message& request, const RequestLimits& limits) {
  return Checker(limits).Check(request, "");
}

}  // namespace aers::control
