// UploadAssembler: turns a request body into a BufferedUpload as its bytes arrive
// (DESIGN.md §1 memory and spill modes). A multipart/form-data body is parsed part by
// part with MultipartParser: plain fields are kept as strings, files go into
// UploadedFiles, which spill to the temp directory past FILE_UPLOAD_MAX_MEMORY_SIZE
// and fail with kResourceExhausted past FILE_UPLOAD_MAX_SIZE. Any other body (raw) is
// stored as a single UploadedFile with field name "" and filename "", under the same
// memory, spill and size rules.
//
// Errors carry the status of whoever found them (MultipartParser: kInvalidArgument for
// malformed bodies, kResourceExhausted for limits; UploadedFile: kResourceExhausted for
// a file too large or a full disk); the caller converts once, at the HTTP edge. After
// the first error every call returns it again.
//
// Ownership: the assembler owns everything received so far; destroying it (on an
// error, or when the uploader goes away mid-body) frees the memory and removes the
// temp files at once. Finish() moves it all into the returned BufferedUpload.
// `options.temp_dir` is not owned and must outlive the assembler and the upload.
// Not movable: the parser keeps a pointer to it (hence Create() returns unique_ptr).
//
// Threading: not thread-safe; one thread (the connection's loop) at a time.
#ifndef SPILLWAY_SERVER_UPLOAD_UPLOAD_ASSEMBLER_H_
#define SPILLWAY_SERVER_UPLOAD_UPLOAD_ASSEMBLER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/upload/buffered_upload.h"
#include "server/upload/multipart_parser.h"
#include "server/upload/request_info.h"
#include "server/upload/temp_directory.h"
#include "server/upload/upload_settings.h"
#include "server/upload/uploaded_file.h"

namespace spillway {

struct UploadAssemblerOptions {
  UploadedFileOptions file;  // memory threshold, size limit, checksum, temp dir
  MultipartLimits multipart;

  // The options UploadSettings asks for; `temp_dir` is not owned.
  static UploadAssemblerOptions FromSettings(const UploadSettings& settings,
                                             TempDirectory* temp_dir);
};

class UploadAssembler final : private MultipartParser::Handler {
 public:
  // Reads request.content_type: multipart/form-data is parsed (a missing or invalid
  // boundary is kInvalidArgument, at once); anything else is a raw body.
  static absl::StatusOr<std::unique_ptr<UploadAssembler>> Create(
      RequestInfo request, const UploadAssemblerOptions& options);

  UploadAssembler(const UploadAssembler&) = delete;
  UploadAssembler& operator=(const UploadAssembler&) = delete;
  ~UploadAssembler() override;

  // The next bytes of the body, in order; `data` is not kept.
  absl::Status Append(std::string_view data);

  // The body is complete: checks a multipart body was closed (kInvalidArgument
  // otherwise), finishes the files and hands everything over. At most once.
  absl::StatusOr<BufferedUpload> Finish();

  // What a body that outgrew buffering (unknown length past MAX_BODY_SIZE, DESIGN.md
  // §1) hands to the stream that takes it over.
  struct Handover {
    // Everything received so far, in order. A part still being received when the body
    // switched is included with what it has so far (its file finished, so readable).
    BufferedUpload received;
    // The parser, to go on with the rest of the body (set_handler() it); null for a
    // raw body, whose one file simply continues.
    std::unique_ptr<MultipartParser> parser;
    // The last part of `received` is still open: its remaining bytes are to come.
    bool last_part_open = false;
  };
  // Instead of Finish(), for a body that goes on as a stream. At most once; the
  // assembler is spent afterwards.
  absl::StatusOr<Handover> HandOver();

  const RequestInfo& request() const { return upload_.request; }
  uint64_t bytes_received() const { return upload_.total_bytes; }

 private:
  UploadAssembler(RequestInfo request, const UploadAssemblerOptions& options,
                  std::optional<std::string> boundary);

  // MultipartParser::Handler
  absl::Status OnPartBegin(const PartHeaders& headers) override;
  absl::Status OnPartData(std::string_view data) override;
  absl::Status OnPartEnd() override;
  absl::Status OnBodyEnd() override;

  absl::Status Fail(absl::Status status);
  // The checks both Finish() and HandOver() start with.
  absl::Status BeginFinishing();

  const UploadAssemblerOptions options_;
  BufferedUpload upload_;
  // Absent for raw bodies. On the heap, not inline: the assembler stays under glibc's
  // per-thread cache size (1032 bytes), and its allocation off malloc's slow path.
  std::unique_ptr<MultipartParser> parser_;
  UploadedFile* current_file_ = nullptr;   // the file part being received
  FormField* current_field_ = nullptr;     // the plain part being received
  absl::Status status_;
  bool finished_ = false;  // Finish() or HandOver() was called
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_UPLOAD_ASSEMBLER_H_
