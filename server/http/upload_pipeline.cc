#include "server/http/upload_pipeline.h"

#include <utility>

#include "server/admin/metrics.h"
#include "server/common/status_macros.h"
#include "server/http/upload_exchange.h"

namespace spillway {

std::vector<SettingSpec> UploadPipelineSettings::Specs() {
  std::vector<SettingSpec> specs;
  for (const SettingSpec& spec : DispatchSettings::Specs()) specs.push_back(spec);
  for (const SettingSpec& spec : SinkSettings::Specs()) specs.push_back(spec);
  return specs;
}

absl::StatusOr<UploadPipelineSettings> UploadPipelineSettings::FromSource(
    SettingsSource& source) {
  UploadPipelineSettings settings;
  ASSIGN_OR_RETURN(settings.dispatch, DispatchSettings::FromSource(source));
  ASSIGN_OR_RETURN(settings.sinks, SinkSettings::FromSource(source));
  return settings;
}

absl::StatusOr<std::unique_ptr<UploadPipeline>> UploadPipeline::Start(
    const UploadSettings& upload, const UploadPipelineSettings& settings) {
  ASSIGN_OR_RETURN(TempDirectory temp_dir,
                   TempDirectory::Open(upload.file_upload_temp_dir));
  // Files a crashed predecessor left; live processes' files are locked and kept.
  RETURN_IF_ERROR(temp_dir.SweepLeftovers().status());
  std::unique_ptr<UploadPipeline> pipeline(new UploadPipeline(std::move(temp_dir)));
  Gauge* spilled = MetricsRegistry::Global().GetGauge(
      "spillway_spilled_bytes", "Bytes of spilled upload files on disk now.");
  pipeline->spill_budget_ = std::make_unique<SpillBudget>(
      upload.max_spill_bytes, [spilled](int64_t delta) { spilled->Add(delta); });

  DispatchSettings dispatch = settings.dispatch;
  dispatch.chunk_size = upload.stream_body_chunk_size;
  pipeline->dispatcher_ = std::make_unique<Dispatcher>(dispatch);
  ASSIGN_OR_RETURN(pipeline->sinks_,
                   SinkPool::Start(settings.sinks, pipeline->dispatcher_.get()));

  UploadHandlerOptions options;
  options.settings = upload;
  options.multipart = upload.multipart_limits();
  options.temp_dir = &pipeline->temp_dir_;
  options.spill_budget = pipeline->spill_budget_.get();
  options.dispatcher = pipeline->dispatcher_.get();
  pipeline->handler_ = MakeUploadHandler(std::move(options));
  return pipeline;
}

UploadPipeline::~UploadPipeline() = default;

}  // namespace spillway
