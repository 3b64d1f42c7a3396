#include "server/common/settings_source.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "server/common/quantity.h"
#include "server/common/string_view_compat.h"

namespace spillway {

std::string FlagName(std::string_view setting_name) {
  return absl::StrCat(
      "--", absl::AsciiStrToLower(absl::StrReplaceAll(AbslView(setting_name), {{"_", "-"}})));
}

std::string EnvName(std::string_view setting_name) {
  return absl::StrCat("SPILLWAY_", AbslView(setting_name));
}

std::string FormatSettingsHelp(absl::Span<const SettingSpec> specs) {
  std::string out;
  for (const SettingSpec& spec : specs) {
    absl::StrAppend(&out, "  ", FlagName(spec.name), "  (env ", EnvName(spec.name),
                    ", default \"", AbslView(spec.default_value), "\")\n      ",
                    AbslView(spec.help),
                    "\n");
  }
  return out;
}

SettingsSource::EnvLookup SettingsSource::ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

absl::StatusOr<SettingsSource> SettingsSource::FromCommandLine(int argc,
                                                               const char* const* argv,
                                                               EnvLookup env) {
  std::map<std::string, std::string> flags;
  bool help = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help = true;
      continue;
    }
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", AbslView(arg), "\" (settings are --name=value)"));
    }
    arg.remove_prefix(2);
    std::string name;
    std::string value;
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = std::string(arg.substr(0, eq));
      value = std::string(arg.substr(eq + 1));
    } else if (i + 1 < argc) {
      name = std::string(arg);
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", AbslView(arg), " needs a value"));
    }
    if (!flags.emplace(name, std::move(value)).second) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " given twice"));
    }
  }
  return SettingsSource(std::move(flags), std::move(env), help);
}

SettingsSource::RawValue SettingsSource::Lookup(const SettingSpec& spec) {
  const std::string flag = FlagName(spec.name);
  if (auto it = flags_.find(flag.substr(2)); it != flags_.end()) {
    used_flags_.insert(it->first);
    return {it->second, flag};
  }
  const std::string env = EnvName(spec.name);
  if (std::optional<std::string> value = env_(env); value.has_value()) {
    return {*std::move(value), env};
  }
  return {std::string(spec.default_value), "default"};
}

absl::Status SettingsSource::Invalid(const SettingSpec& spec, const RawValue& raw,
                                     const absl::Status& why) {
  return absl::InvalidArgumentError(absl::StrCat("setting ", AbslView(spec.name), " (from ",
                                                 raw.origin, ") = \"", raw.value,
                                                 "\": ", why.message()));
}

absl::StatusOr<std::string> SettingsSource::GetString(const SettingSpec& spec) {
  return Lookup(spec).value;
}

absl::StatusOr<uint64_t> SettingsSource::GetByteSize(const SettingSpec& spec) {
  return GetParsed<uint64_t>(spec, ParseByteSize);
}

absl::StatusOr<absl::Duration> SettingsSource::GetDuration(const SettingSpec& spec) {
  return GetParsed<absl::Duration>(spec, ParseNonNegativeDuration);
}

absl::StatusOr<int64_t> SettingsSource::GetInteger(const SettingSpec& spec,
                                                   int64_t min, int64_t max) {
  return GetParsed<int64_t>(
      spec, [min, max](std::string_view text) -> absl::StatusOr<int64_t> {
        int64_t value = 0;
        if (!absl::SimpleAtoi(AbslView(text), &value) || value < min || value > max) {
          return absl::InvalidArgumentError(
              absl::StrCat("expected a whole number from ", min, " to ", max));
        }
        return value;
      });
}

absl::Status SettingsSource::CheckAllFlagsUsed() const {
  for (const auto& [name, value] : flags_) {
    if (!used_flags_.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace spillway
