// The floor of a durable edit over gRPC on this machine: a server of
// aers.v1.Control that does nothing but what no edit can skip.
//
//   floor_server --socket PATH --disk DIR [--flushes N]
//
// GetStatus answers with an empty status (a read's round trip and nothing
// else). SetParameter writes one 4 KiB record over allocated room and
// flushes it (disk_floor.h: what aersd's journal does for every durable
// edit), then answers; it looks at nothing in the request. With --flushes 2
// it writes and flushes one record into each of two files in turn, as aersd
// does with an audit log (the audit record, then the journal's). Every other
// method is UNIMPLEMENTED. The gRPC server is set up as aersd's is (sync
// server, two pollers at least, the same thread cap), so that
// control_bench --unary-only against it measures, in the same run as
// against aersd, the least a SetParameter can take here:
// control_bench.sh prints aersd's p50 beside it.
//
// Thread: gRPC's; the flushes are serialised by a mutex (one client in the
// benchmark's unary phases). Runs until SIGTERM or SIGINT.
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "control.grpc.pb.h"
#include "disk_floor.h"

namespace {

class FloorService final : public aers::v1::Control::Service {
 public:
  FloorService(const std::string& disk_dir, int flushes) {
    for (int i = 0; i < flushes; ++i) {
      disks_.push_back(std::make_unique<aers::bench::DiskFloor>(
          disk_dir, "floor_server." + std::to_string(i) + ".flush"));
    }
  }

  grpc::Status GetStatus(grpc::ServerContext*, const aers::v1::GetStatusRequest*,
                         aers::v1::Status* resp) override {
    resp->set_version("floor");
    return grpc::Status::OK;
  }

  grpc::Status SetParameter(grpc::ServerContext*, const aers::v1::SetParameterRequest*,
                            aers::v1::EditResponse* resp) override {
    std::lock_guard lock(mu_);
    for (auto& d : disks_) d->Flush();
    resp->set_revision(++revision_);
    return grpc::Status::OK;
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<aers::bench::DiskFloor>> disks_;
  uint64_t revision_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string socket, disk_dir;
  int flushes = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--socket") socket = argv[i + 1];
    if (a == "--disk") disk_dir = argv[i + 1];
    if (a == "--flushes") flushes = std::atoi(argv[i + 1]);
  }
  if (socket.empty() || disk_dir.empty() || flushes < 1 || flushes > 2) {
    std::fprintf(stderr, "usage: floor_server --socket PATH --disk DIR [--flushes 1|2]\n");
    return 2;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // gRPC's threads inherit the mask

  FloorService service(disk_dir, flushes);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  // As daemon/control/grpc/server.cc sets up aersd's listeners (defaults).
  grpc::ResourceQuota quota("floor_server");
  quota.SetMaxThreads(32);
  builder.SetResourceQuota(quota);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 16);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "floor_server: cannot listen on %s\n", socket.c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown();
  return 0;
}
