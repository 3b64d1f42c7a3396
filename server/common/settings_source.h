// SettingsSource resolves Spillway's settings from the command line and the
// environment. Every setting has an UPPER_SNAKE name; `--kebab-case-name` on the
// command line wins over `SPILLWAY_<NAME>` in the environment, which wins over the
// default. Modules declare their settings as SettingSpec tables and read them
// through a SettingsSource, so each error names the setting, where the value came
// from, and the value.
//
// Threading: built and read by one thread at start-up; not thread-safe.
#ifndef SPILLWAY_SERVER_COMMON_SETTINGS_SOURCE_H_
#define SPILLWAY_SERVER_COMMON_SETTINGS_SOURCE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace spillway {

// A setting as its owning module declares it. The strings are literals.
struct SettingSpec {
  std::string_view name;           // "MAX_BODY_SIZE"
  std::string_view default_value;  // written as a user would, e.g. "10Mi"
  std::string_view help;
};

// "MAX_BODY_SIZE" -> "--max-body-size"; "MAX_BODY_SIZE" -> "SPILLWAY_MAX_BODY_SIZE".
std::string FlagName(std::string_view setting_name);
std::string EnvName(std::string_view setting_name);

// One line per setting: flag, environment variable, default and help.
std::string FormatSettingsHelp(absl::Span<const SettingSpec> specs);

class SettingsSource {
 public:
  // Looks a variable up in the environment; tests pass a map instead of the process's.
  using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
  static EnvLookup ProcessEnvironment();

  // Accepts `--name=value` and `--name value`; `--help`/`-h` set help_requested().
  // Anything else (a positional argument, a lone `-x`) is an error.
  static absl::StatusOr<SettingsSource> FromCommandLine(
      int argc, const char* const* argv, EnvLookup env = ProcessEnvironment());

  // Parses the raw value with `parse` (string_view -> absl::StatusOr<T>); a parse
  // error comes back naming the setting, where the value came from, and the value.
  template <typename T, typename Parser>
  absl::StatusOr<T> GetParsed(const SettingSpec& spec, Parser parse) {
    RawValue raw = Lookup(spec);
    absl::StatusOr<T> value = parse(std::string_view(raw.value));
    if (!value.ok()) return Invalid(spec, raw, value.status());
    return value;
  }

  absl::StatusOr<std::string> GetString(const SettingSpec& spec);
  absl::StatusOr<uint64_t> GetByteSize(const SettingSpec& spec);
  absl::StatusOr<absl::Duration> GetDuration(const SettingSpec& spec);
  absl::StatusOr<int64_t> GetInteger(const SettingSpec& spec, int64_t min,
                                     int64_t max);

  // Fails naming the first flag that no Get* call asked for (a typo, most likely).
  absl::Status CheckAllFlagsUsed() const;

  bool help_requested() const { return help_requested_; }

 private:
  struct RawValue {
    std::string value;
    std::string origin;  // "--max-body-size", "SPILLWAY_MAX_BODY_SIZE" or "default"
  };

  SettingsSource(std::map<std::string, std::string> flags, EnvLookup env,
                 bool help_requested)
      : flags_(std::move(flags)), env_(std::move(env)), help_requested_(help_requested) {}

  RawValue Lookup(const SettingSpec& spec);
  static absl::Status Invalid(const SettingSpec& spec, const RawValue& raw,
                              const absl::Status& why);

  std::map<std::string, std::string> flags_;  // flag name without "--" -> value
  std::set<std::string> used_flags_;
  EnvLookup env_;
  bool help_requested_ = false;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_COMMON_SETTINGS_SOURCE_H_
