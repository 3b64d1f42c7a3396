// Test helpers for the upload pipeline: multipart bodies, SHA-256, a consumer that
// hands its deliveries to the test thread, and a Delivery drained into a readable log.
#ifndef SPILLWAY_TESTS_UNIT_DISPATCH_TEST_UTIL_H_
#define SPILLWAY_TESTS_UNIT_DISPATCH_TEST_UTIL_H_

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/common/mutex.h"
#include "server/common/string_view_compat.h"
#include "server/dispatch/consumer.h"
#include "server/dispatch/delivery.h"
#include "server/upload/checksum.h"

namespace spillway::testing {

inline std::string TestBytes(size_t size, int seed = 0) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>((i * 131 + 7 + seed * 17) % 251);
  }
  return data;
}

inline std::string Sha256Hex(std::string_view data) {
  Checksum checksum = Checksum::Create(ChecksumKind::kSha256);
  checksum.Update(data);
  return checksum.FinishHex();
}

constexpr std::string_view kBoundary = "----spillwaytestboundary";

inline std::string MultipartContentType() {
  return absl::StrCat("multipart/form-data; boundary=", AbslView(kBoundary));
}

// Builds a multipart/form-data body with kBoundary.
class MultipartBody {
 public:
  MultipartBody& Field(std::string_view name, std::string_view value) {
    absl::StrAppend(&body_, "--", AbslView(kBoundary),
                    "\r\nContent-Disposition: form-data; name=\"", AbslView(name),
                    "\"\r\n\r\n", AbslView(value), "\r\n");
    return *this;
  }
  MultipartBody& File(std::string_view name, std::string_view filename,
                      std::string_view content_type, std::string_view data) {
    absl::StrAppend(&body_, "--", AbslView(kBoundary),
                    "\r\nContent-Disposition: form-data; name=\"", AbslView(name),
                    "\"; filename=\"", AbslView(filename), "\"\r\nContent-Type: ",
                    AbslView(content_type), "\r\n\r\n", AbslView(data), "\r\n");
    return *this;
  }
  std::string Build() const { return absl::StrCat(body_, "--", AbslView(kBoundary), "--\r\n"); }

 private:
  std::string body_;
};

// A consumer whose deliveries queue up for the test thread to take and script.
class QueueConsumer final : public Consumer {
 public:
  void Start(std::unique_ptr<Delivery> delivery) override {
    MutexLock lock(&mu_);
    deliveries_.push_back(std::move(delivery));
    ++started_;
    cv_.Signal();
  }

  // The next delivery, or null if none arrives within `timeout`.
  std::unique_ptr<Delivery> Take(absl::Duration timeout = absl::Seconds(5)) {
    MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !deliveries_.empty();
    };
    if (!cv_.AwaitWithTimeout(&mu_, ready, timeout)) return nullptr;
    std::unique_ptr<Delivery> delivery = std::move(deliveries_.front());
    deliveries_.pop_front();
    return delivery;
  }

  int started() const {
    MutexLock lock(&mu_);
    return started_;
  }

 private:
  mutable Mutex mu_;
  CondVar cv_;  // signalled when a delivery arrives
  std::deque<std::unique_ptr<Delivery>> deliveries_ ABSL_GUARDED_BY(mu_);
  int started_ ABSL_GUARDED_BY(mu_) = 0;
};

// One line per event: "started attempt=1 mode=memory path=/x", "field a=b",
// "file f name.txt text/plain size=3 memory", "chunk 0 +3", "finished-file 3 <sha>",
// "finished 123", "aborted <reason>". Chunk bytes are appended to `*data`.
inline std::string Describe(const UploadEvent& event, std::string* data = nullptr) {
  struct Visitor {
    std::string* data;
    std::string operator()(const RequestStartedEvent& e) {
      return absl::StrCat("started attempt=", e.attempt,
                          " mode=", AbslView(UploadModeName(e.mode)),
                          " path=", e.request->path);
    }
    std::string operator()(const FieldEvent& e) {
      return absl::StrCat("field ", AbslView(e.name), "=", AbslView(e.value));
    }
    std::string operator()(const FileStartedEvent& e) {
      return absl::StrCat("file ", AbslView(e.field_name), " ", AbslView(e.filename), " ",
                          AbslView(e.content_type), " size=",
                          e.size.has_value() ? absl::StrCat(*e.size) : "?", " ",
                          AbslView(UploadModeName(e.mode)),
                          e.path_only ? " path-only" : "");
    }
    std::string operator()(const ChunkEvent& e) {
      if (data != nullptr) data->append(e.data);
      return absl::StrCat("chunk ", e.offset, " +", e.data.size());
    }
    std::string operator()(const FileFinishedEvent& e) {
      return absl::StrCat("finished-file ", e.size, " ", AbslView(e.checksum_hex));
    }
    std::string operator()(const RequestFinishedEvent& e) {
      return absl::StrCat("finished ", e.total_bytes);
    }
    std::string operator()(const RequestAbortedEvent& e) {
      return absl::StrCat("aborted ", AbslView(e.reason));
    }
  };
  return std::visit(Visitor{data}, event);
}

// Pulls every event up to the last one (blocking), or stops at an error.
inline std::vector<std::string> Drain(Delivery& delivery, std::string* data = nullptr) {
  std::vector<std::string> log;
  for (;;) {
    absl::StatusOr<UploadEvent> event = NextEventBlocking(delivery);
    if (!event.ok()) {
      log.push_back(absl::StrCat("error ", event.status().ToString()));
      return log;
    }
    log.push_back(Describe(*event, data));
    if (IsLastEvent(*event)) return log;
  }
}

}  // namespace spillway::testing

#endif  // SPILLWAY_TESTS_UNIT_DISPATCH_TEST_UTIL_H_
