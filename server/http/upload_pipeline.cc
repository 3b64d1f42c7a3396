#include "server/http/upload_pipeline.h"

#include <utility>

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

  DispatchSettings dispatch = settings.dispatch;
  dispatch.chunk_size = upload.stream_body_chunk_size;
  pipeline->dispatcher_ = std::make_unique<Dispatcher>(dispatch);
  ASSIGN_OR_RETURN(pipeline->sinks_,
                   SinkPool::Start(settings.sinks, pipeline->dispatcher_.get()));

  UploadHandlerOptions options;
  options.settings = upload;
  options.temp_dir = &pipeline->temp_dir_;
  options.dispatcher = pipeline->dispatcher_.get();
  pipeline->handler_ = MakeUploadHandler(std::move(options));
  return pipeline;
}

UploadPipeline::~UploadPipeline() = default;

}  // namespace spillway
