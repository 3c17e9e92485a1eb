#include "control/grpc/reflection.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <set>

namespace aers::control {

namespace {

namespace refl = grpc::reflection::v1alpha;
using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;

// A file and everything it imports, each once, dependencies first.
void AddFile(const FileDescriptor* file, std::set<std::string>& seen,
             refl::FileDescriptorResponse* out) {
  if (file == nullptr || !seen.insert(file->name()).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) AddFile(file->dependency(i), seen, out);
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(out->add_file_descriptor_proto());
}

void NotFound(refl::ServerReflectionResponse* resp, const std::string& what) {
  auto* e = resp->mutable_error_response();
  e->set_error_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
  e->set_error_message(what);
}

}  // namespace

grpc::Status ReflectionService::ServerReflectionInfo(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<refl::ServerReflectionResponse, refl::ServerReflectionRequest>*
        stream) {
  if (grpc::Status st = authorize_(context); !st.ok()) return st;
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  refl::ServerReflectionRequest req;
  int answered = 0;
  while (stream->Read(&req)) {
    // A bound on one stream's work (a client listing everything needs a
    // handful of requests).
    if (++answered > 1024) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "reflection: more than 1024 requests on one stream");
    }
    refl::ServerReflectionResponse resp;
    resp.set_valid_host(req.host().substr(0, 256));
    *resp.mutable_original_request() = req;
    std::set<std::string> seen;
    switch (req.message_request_case()) {
      case refl::ServerReflectionRequest::kListServices:
        for (const auto& s : services_)
          resp.mutable_list_services_response()->add_service()->set_name(s);
        break;
      case refl::ServerReflectionRequest::kFileByFilename: {
        const FileDescriptor* f = pool->FindFileByName(req.file_by_filename());
        if (f == nullptr) {
          NotFound(&resp, "file not found");
        } else {
          AddFile(f, seen, resp.mutable_file_descriptor_response());
        }
        break;
      }
      case refl::ServerReflectionRequest::kFileContainingSymbol: {
        const FileDescriptor* f = pool->FindFileContainingSymbol(req.file_containing_symbol());
        if (f == nullptr) {
          NotFound(&resp, "symbol not found");
        } else {
          AddFile(f, seen, resp.mutable_file_descriptor_response());
        }
        break;
      }
      case refl::ServerReflectionRequest::kFileContainingExtension:
      case refl::ServerReflectionRequest::kAllExtensionNumbersOfType:
        NotFound(&resp, "aersd's API declares no extensions");
        break;
      case refl::ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET: {
        auto* e = resp.mutable_error_response();
        e->set_error_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
        e->set_error_message("message_request: not set");
        break;
      }
    }
    if (!stream->Write(resp)) break;
  }
  return grpc::Status::OK;
}

}  // namespace aers::control
