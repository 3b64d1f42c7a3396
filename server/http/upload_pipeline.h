// UploadPipeline: everything between the HTTP sessions and the consumers, built and
// owned in one place for main.cc: the temp directory (swept of a crashed process's
// leftovers), the Dispatcher, the built-in sinks (SINK), and the upload
// RequestHandler (MakeUploadHandler) to put behind the Router.
//
// Wiring (main.cc), settings first because CheckAllFlagsUsed rejects unread flags:
//
//   absl::StatusOr<UploadPipelineSettings> pipeline_settings =
//       UploadPipelineSettings::FromSource(*source);
//   if (!pipeline_settings.ok()) return Fail(kExitBadSettings, pipeline_settings.status());
//   ... CheckAllFlagsUsed ...
//   absl::StatusOr<std::unique_ptr<UploadPipeline>> pipeline =
//       UploadPipeline::Start(*upload_settings, *pipeline_settings);
//   if (!pipeline.ok()) return Fail(kExitStartupFailure, pipeline.status());
//   ConcurrencyLimitedHandler limited_upload((*pipeline)->handler(), &upload_slots);
//   Router router(&admin, AdminHandler::Paths(), &limited_upload);
//
// Destruction order: the pipeline must outlive the HTTP server (its exchanges hold
// pointers to the dispatcher and temp directory): declare it before the server. Its
// own members go down in the right order: handler, sinks, then the dispatcher.
//
// Threading: Start() and the destructor on the main thread; handler() and
// dispatcher() return objects that are thread-safe.
#ifndef SPILLWAY_SERVER_HTTP_UPLOAD_PIPELINE_H_
#define SPILLWAY_SERVER_HTTP_UPLOAD_PIPELINE_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "server/common/settings_source.h"
#include "server/dispatch/dispatch_settings.h"
#include "server/dispatch/dispatcher.h"
#include "server/dispatch/sink_pool.h"
#include "server/http/exchange.h"
#include "server/upload/spill_budget.h"
#include "server/upload/temp_directory.h"
#include "server/upload/upload_settings.h"

namespace spillway {

struct UploadPipelineSettings {
  DispatchSettings dispatch;  // DISPATCH_TIMEOUT, REPLY_TIMEOUT, MAX_DELIVERY_ATTEMPTS
  SinkSettings sinks;         // SINK, SINK_WORKERS

  // Every spec, for --help.
  static std::vector<SettingSpec> Specs();
  static absl::StatusOr<UploadPipelineSettings> FromSource(SettingsSource& source);
};

class UploadPipeline {
 public:
  static absl::StatusOr<std::unique_ptr<UploadPipeline>> Start(
      const UploadSettings& upload, const UploadPipelineSettings& settings);
  ~UploadPipeline();

  UploadPipeline(const UploadPipeline&) = delete;
  UploadPipeline& operator=(const UploadPipeline&) = delete;

  RequestHandler* handler() const { return handler_.get(); }
  // For the gRPC Consume service: it registers its streams here.
  Dispatcher* dispatcher() const { return dispatcher_.get(); }
  // For the gRPC Upload RPC, whose files spill and are charged like HTTP ones. Both
  // live as long as the pipeline.
  TempDirectory* temp_dir() { return &temp_dir_; }
  SpillBudget* spill_budget() const { return spill_budget_.get(); }

 private:
  explicit UploadPipeline(TempDirectory temp_dir) : temp_dir_(std::move(temp_dir)) {}

  // Declaration order is destruction order, reversed: handler first, dispatcher, then
  // the spill budget, which every spilled file still queued or being read draws on.
  std::unique_ptr<SpillBudget> spill_budget_;  // MAX_SPILL_BYTES
  TempDirectory temp_dir_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<SinkPool> sinks_;
  std::unique_ptr<RequestHandler> handler_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_UPLOAD_PIPELINE_H_
