// grpc.reflection.v1alpha served from the generated descriptor pool, behind
// the same authentication as every other call (gRPC's own reflection plugin
// answers anyone, which a TCP listener must not).
//
// Thread: gRPC's threads.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "reflection.grpc.pb.h"

namespace aers::control {

class ReflectionService final : public grpc::reflection::v1alpha::ServerReflection::Service {
 public:
  /// `authorize` runs first on every call; a non-OK status is returned as is.
  using Authorize = std::function<grpc::Status(grpc::ServerContext*)>;

  ReflectionService(std::vector<std::string> services, Authorize authorize)
      : services_(std::move(services)), authorize_(std::move(authorize)) {}

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<grpc::reflection::v1alpha::ServerReflectionResponse,
                               grpc::reflection::v1alpha::ServerReflectionRequest>* stream)
      override;

 private:
  const std::vector<std::string> services_;
  const Authorize authorize_;
};

}  // namespace aers::control
