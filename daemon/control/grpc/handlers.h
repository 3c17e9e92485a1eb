// The control API's handlers: proto request -> domain call (GraphService,
// the engine) -> proto response, for a caller already authenticated and
// authorised, on a request already checked (request_check.h). They know
// nothing of sockets, TLS or metadata, so they run the same under gRPC, in
// unit tests over an in-process channel and under the fuzzer.
//
// Mutations are audited here, write-ahead: the record of an edit is
// written before the graph changes and an unwritable audit log refuses the
// edit (UNAVAILABLE); dry runs, refusals, conflicts and invalid edits are
// recorded too.
//
// Thread: gRPC's threads; every call is independent (GraphService
// serialises edits).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backend/backend.h"
#include "control.pb.h"
#include "control/audit.h"
#include "control/auth.h"
#include "control/service.h"

namespace aers::control {

/// A plugin the gate admitted (for ListPlugins).
struct PluginSummary {
  std::string name, version, format, hash_algorithm, hash, signer_key_id, module_path;
  uint64_t serial = 0;
  std::vector<std::string> kinds;
};

class ControlHandlers {
 public:
  using StatusFn = std::function<backend::BackendStatus()>;
  using PluginsFn = std::function<std::vector<PluginSummary>()>;
  /// Streams ask this between messages; true ends the stream.
  using CancelledFn = std::function<bool()>;

  struct Deps {
    GraphService* service = nullptr;
    AuditLog* audit = nullptr;  ///< null: records go nowhere (tests)
    StatusFn status;
    PluginsFn plugins;
    std::string version;
    std::string state_file;
  };

  explicit ControlHandlers(Deps deps);

  absl::Status GetGraph(const Principal& who, const aers::v1::GetGraphRequest& req,
                        aers::v1::GetGraphResponse* resp);
  absl::Status GetStatus(const Principal& who, const aers::v1::GetStatusRequest& req,
                         aers::v1::Status* resp);
  absl::Status ListKinds(const Principal& who, const aers::v1::ListKindsRequest& req,
                         aers::v1::ListKindsResponse* resp);
  absl::Status ListPlugins(const Principal& who, const aers::v1::ListPluginsRequest& req,
                           aers::v1::ListPluginsResponse* resp);

  absl::Status ApplyGraph(const Principal& who, const aers::v1::ApplyGraphRequest& req,
                          aers::v1::EditResponse* resp);
  absl::Status Edit(const Principal& who, const aers::v1::EditRequest& req,
                    aers::v1::EditResponse* resp);
  absl::Status AddNode(const Principal& who, const aers::v1::AddNodeRequest& req,
                       aers::v1::EditResponse* resp);
  absl::Status RemoveNode(const Principal& who, const aers::v1::RemoveNodeRequest& req,
                          aers::v1::EditResponse* resp);
  absl::Status Connect(const Principal& who, const aers::v1::ConnectRequest& req,
                       aers::v1::EditResponse* resp);
  absl::Status Disconnect(const Principal& who, const aers::v1::DisconnectRequest& req,
                          aers::v1::EditResponse* resp);
  absl::Status SetParameter(const Principal& who, const aers::v1::SetParameterRequest& req,
                            aers::v1::EditResponse* resp);
  absl::Status ResetToConfig(const Principal& who, const aers::v1::ResetToConfigRequest& req,
                             aers::v1::EditResponse* resp);
  /// Restarts meters' integrated loudness, LRA and true peak (audited; not a
  /// graph edit). NOT_FOUND names the first unknown node.
  absl::Status ResetLoudness(const Principal& who, const aers::v1::ResetLoudnessRequest& req,
                             aers::v1::ResetLoudnessResponse* resp);

  /// Streams: `write` returns false when the client is gone.
  absl::Status WatchEvents(const Principal& who, const aers::v1::WatchEventsRequest& req,
                           const CancelledFn& cancelled,
                           const std::function<bool(const aers::v1::Event&)>& write);
  absl::Status StreamMeters(const Principal& who, const aers::v1::StreamMetersRequest& req,
                            const CancelledFn& cancelled,
                            const std::function<bool(const aers::v1::MeterFrame&)>& write);

  /// A client stream of live parameter values: `read` fills the next one
  /// (false: the client closed the stream) or returns an error (a value the
  /// gate refused). Audited at open (refused if that record cannot be
  /// written) and at every save of the stream's values.
  using ReadParameterFn = std::function<absl::StatusOr<bool>(aers::v1::StreamParametersRequest*)>;
  absl::Status StreamParameters(const Principal& who, const ReadParameterFn& read,
                                aers::v1::StreamParametersResponse* resp);

  /// A mutation refused before its handler ran (permission, malformed
  /// request), recorded in the audit log. Callers pass mutations only (the
  /// gate: calls that need the operator role).
  void RecordRefused(const Principal& who, const std::string& operation,
                     const google::protobuf::Message& request, const absl::Status& status);

  /// Ends streams (shutdown).
  void Stop() { stopping_ = true; }
  bool stopping() const { return stopping_; }

 private:
  using DomainCall = std::function<absl::StatusOr<EditOutcome>(const CallContext&)>;
  absl::Status Mutate(const Principal& who, const std::string& operation,
                      const google::protobuf::Message& request, bool dry_run,
                      const DomainCall& call, aers::v1::EditResponse* resp);
  absl::Status EditOne(const Principal& who, const std::string& operation,
                       const google::protobuf::Message& request, EditOp op, bool has_expected,
                       uint64_t expected, aers::v1::EditResponse* resp);
  AuditRecord BaseRecord(const Principal& who, const std::string& operation,
                         const google::protobuf::Message& request) const;

  Deps d_;
  std::chrono::steady_clock::time_point started_;
  std::atomic<bool> stopping_{false};
};

/// What a request acts on, for audit records: "node eq", "route a -> b",
/// "graph (yaml from my.yaml)", "ops: + node x; connect a -> b".
std::string RequestTarget(const google::protobuf::Message& request);

}  // namespace aers::control
