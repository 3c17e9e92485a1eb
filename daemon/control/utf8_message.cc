// SanitizeUtf8Fields: in an object of its own, so that a program using only
// the string functions of utf8.cc (the `aersd` command's log sink) does not
// link protobuf.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>

#include "control/utf8.h"

namespace aers::control {

int SanitizeUtf8Fields(google::protobuf::Message& message) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = message.GetReflection();
  const google::protobuf::Descriptor* d = message.GetDescriptor();
  int changed = 0;
  for (int f = 0; f < d->field_count(); ++f) {
    const FieldDescriptor* field = d->field(f);
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
        field->type() == FieldDescriptor::TYPE_STRING) {
      if (field->is_repeated()) {
        for (int i = 0; i < r->FieldSize(message, field); ++i) {
          const std::string v = r->GetRepeatedString(message, field, i);
          if (!IsValidUtf8(v)) {
            r->SetRepeatedString(&message, field, i, SanitizeUtf8(v));
            ++changed;
          }
        }
      } else if (r->HasField(message, field) || !field->has_presence()) {
        const std::string v = r->GetString(message, field);
        if (!IsValidUtf8(v)) {
          r->SetString(&message, field, SanitizeUtf8(v));
          ++changed;
        }
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      // Map entries are repeated messages here: keys and values included.
      if (field->is_repeated()) {
        for (int i = 0; i < r->FieldSize(message, field); ++i) {
          changed += SanitizeUtf8Fields(*r->MutableRepeatedMessage(&message, field, i));
        }
      } else if (r->HasField(message, field)) {
        changed += SanitizeUtf8Fields(*r->MutableMessage(&message, field));
      }
    }
  }
  return changed;
}

}  // namespace aers::control
