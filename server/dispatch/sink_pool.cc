#include "server/dispatch/sink_pool.h"

#include <array>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/common/quantity.h"
#include "server/common/status_macros.h"
#include "server/common/string_view_compat.h"
#include "server/dispatch/dir_sink.h"
#include "server/dispatch/discard_sink.h"

namespace spillway {
namespace {

constexpr SettingSpec kSink = {
    "SINK", "",
    "built-in consumer: dir:PATH (store files, 201 + JSON receipt), discard (200 + "
    "receipt), discard:rate=50Mi (throttled, for tests); empty: none"};
constexpr SettingSpec kSinkWorkers = {
    "SINK_WORKERS", "4", "uploads the built-in sink handles at once (1 to 256)"};

constexpr std::array<SettingSpec, 2> kSpecs = {kSink, kSinkWorkers};

}  // namespace

absl::Span<const SettingSpec> SinkSettings::Specs() { return kSpecs; }

absl::StatusOr<SinkSettings> SinkSettings::FromSource(SettingsSource& source) {
  SinkSettings settings;
  ASSIGN_OR_RETURN(settings.sink, source.GetString(kSink));
  ASSIGN_OR_RETURN(int64_t workers, source.GetInteger(kSinkWorkers, 1, 256));
  settings.workers = static_cast<int>(workers);
  // Catch a bad SINK here, where the error can name the setting.
  if (absl::StatusOr<std::shared_ptr<Sink>> sink = MakeSink(settings.sink); !sink.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sink / SPILLWAY_SINK: ", sink.status().message()));
  }
  return settings;
}

absl::StatusOr<std::shared_ptr<Sink>> MakeSink(std::string_view spec) {
  if (spec.empty()) return std::shared_ptr<Sink>();
  if (absl::StartsWith(AbslView(spec), "dir:")) {
    ASSIGN_OR_RETURN(std::unique_ptr<DirSink> sink,
                     DirSink::Open(std::string(spec.substr(4))));
    return std::shared_ptr<Sink>(std::move(sink));
  }
  if (spec == "discard") return std::shared_ptr<Sink>(std::make_shared<DiscardSink>());
  if (absl::StartsWith(AbslView(spec), "discard:rate=")) {
    absl::StatusOr<uint64_t> rate = ParseByteSize(spec.substr(13));
    if (!rate.ok() || *rate == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", AbslView(spec), "\": rate must be a positive size per second, e.g. 50Mi"));
    }
    return std::shared_ptr<Sink>(std::make_shared<DiscardSink>(*rate));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", AbslView(spec), "\" is not a sink; expected dir:PATH, discard or discard:rate=SIZE"));
}

absl::StatusOr<std::unique_ptr<SinkPool>> SinkPool::Start(const SinkSettings& settings,
                                                          Dispatcher* dispatcher) {
  std::unique_ptr<SinkPool> pool(new SinkPool(dispatcher));
  ASSIGN_OR_RETURN(pool->sink_, MakeSink(settings.sink));
  if (pool->sink_ == nullptr) return pool;
  for (int i = 0; i < settings.workers; ++i) {
    auto worker = std::make_shared<SinkWorker>(pool->sink_);
    ConsumerSpec spec;
    spec.name = absl::StrCat(AbslView(pool->sink_->name()), "-sink-", i);
    spec.path_prefixes = {"/"};
    spec.paths_only = pool->sink_->ignores_bytes();
    pool->ids_.push_back(dispatcher->Register(worker, std::move(spec)));
    pool->workers_.push_back(std::move(worker));
  }
  return pool;
}

SinkPool::~SinkPool() {
  for (Dispatcher::ConsumerId id : ids_) dispatcher_->Unregister(id);
  for (const auto& worker : workers_) worker->Stop();
}

}  // namespace spillway
