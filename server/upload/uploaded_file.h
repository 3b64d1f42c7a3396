// UploadedFile receives one uploaded file's bytes as they arrive and keeps them in
// memory while the file is small, or in a temp file once it grows past
// max_memory_size ("spilling", DESIGN.md §1). It enforces the per-file size limit and
// computes the file's checksum on the way in, so that once Finish() returns, size,
// mode, path and checksum are final without reading a byte back.
//
// Lifecycle: Append()* then Finish(), then any number of NewReader(). The first error
// (limit exceeded, disk full, ...) ends the upload: the object releases its memory and
// removes its temp file at once, and every later Append()/Finish() returns that error.
//
// Ownership: the object owns its memory buffer and its TempFile; the temp file is
// removed when the UploadedFile is destroyed (or fails), whatever way the upload ended
// (finished, rejected, or abandoned mid-way). `options.temp_dir` is not owned and must
// outlive the object. Movable; a moved-from object may only be destroyed or assigned.
//
// Threading: not thread-safe. Owned by one thread at a time; it may be handed to
// another thread explicitly (moved, or through a queue that synchronises). After
// Finish(), the const methods, including NewReader(), may be called from several
// threads at once, provided nobody moves or destroys the object meanwhile.
#ifndef SPILLWAY_SERVER_UPLOAD_UPLOADED_FILE_H_
#define SPILLWAY_SERVER_UPLOAD_UPLOADED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/upload/block_buffer.h"
#include "server/upload/checksum.h"
#include "server/upload/file_chunk_reader.h"
#include "server/upload/spill_budget.h"
#include "server/upload/temp_directory.h"
#include "server/upload/temp_file.h"

namespace spillway {

struct UploadedFileOptions {
  // A file of at most this many bytes stays in memory (FILE_UPLOAD_MAX_MEMORY_SIZE).
  uint64_t max_memory_size = 2621440;
  // Per-file limit in bytes (FILE_UPLOAD_MAX_SIZE); 0 means unlimited.
  uint64_t max_size = 0;
  ChecksumKind checksum = ChecksumKind::kSha256;
  // Where spilled files go. Not owned; must outlive the UploadedFile. Required only if
  // the file grows past max_memory_size.
  TempDirectory* temp_dir = nullptr;
  // Charged with every byte written to the temp file, given back when it goes
  // (MAX_SPILL_BYTES). Not owned; null means uncounted. Must outlive the UploadedFile.
  SpillBudget* spill_budget = nullptr;
};

class UploadedFile {
 public:
  // Coalescing buffer for small appends once spilled. Appends of kDirectWriteSize or
  // more are written directly: a socket read's worth of body arrives as one slice just
  // under 64 KiB, and copying it first would cost more than the extra write() saves.
  static constexpr size_t kWriteBufferSize = 64 * 1024;
  static constexpr size_t kDirectWriteSize = 16 * 1024;

  // The strings are the part's metadata as the uploader sent them; they are never used
  // to name anything on disk.
  UploadedFile(std::string field_name, std::string filename, std::string content_type,
               const UploadedFileOptions& options);

  UploadedFile(UploadedFile&&) noexcept;
  UploadedFile& operator=(UploadedFile&&) noexcept;
  UploadedFile(const UploadedFile&) = delete;
  UploadedFile& operator=(const UploadedFile&) = delete;
  ~UploadedFile();

  const std::string& field_name() const { return field_name_; }
  const std::string& filename() const { return filename_; }
  const std::string& content_type() const { return content_type_; }

  // Adds the next bytes. The append that would take the file past max_memory_size
  // moves it to a new temp file first (memory contents written, then freed); it stays
  // there. Errors, after which the upload is over:
  //  - kResourceExhausted: the append would take the file past max_size (nothing of
  //    it is kept); or, marked InsufficientStorageError (spill_budget.h), the spill
  //    budget or the temp directory's file system is full;
  //  - kFailedPrecondition: the file must spill but no temp_dir was given, or
  //    Append() after Finish();
  //  - other codes from creating or writing the temp file.
  absl::Status Append(std::string_view data);

  // Ends the upload: writes out buffered bytes and finalises the checksum. Errors as
  // for Append(); calling it twice is kFailedPrecondition.
  absl::Status Finish();

  bool finished() const { return state_ == State::kFinished; }

  // Bytes received so far; final after Finish().
  uint64_t size() const { return size_; }
  // False once the file has spilled (even if it later failed).
  bool in_memory() const { return !spilled_; }
  // The temp file's path while spilled; "" in memory and after a failure.
  std::string_view path() const;
  ChecksumKind checksum_kind() const { return checksum_kind_; }
  // Lower-case hex digest (see Checksum::FinishHex); "" until Finish() and for kNone.
  const std::string& checksum_hex() const { return checksum_hex_; }

  // Heap bytes this object holds for file data (memory blocks, write buffer), for
  // accounting. At most about max_memory_size + kWriteBufferSize.
  size_t memory_bytes() const;

  // A reader over the whole file; see file_chunk_reader.h for the lifetimes involved.
  // kFailedPrecondition unless Finish() succeeded; kInvalidArgument if chunk_size is 0.
  absl::StatusOr<FileChunkReader> NewReader(size_t chunk_size) const;

 private:
  enum class State { kReceiving, kFinished, kFailed };

  absl::Status CheckReceiving() const;
  absl::Status Spill();
  absl::Status WriteToFile(std::string_view data);
  absl::Status FlushWriteBuffer();
  absl::Status WriteFully(std::string_view data);
  // Records `status` as the upload's error, releases memory and the temp file, and
  // returns `status`.
  absl::Status Fail(absl::Status status);

  std::string field_name_;
  std::string filename_;
  std::string content_type_;
  UploadedFileOptions options_;

  State state_ = State::kReceiving;
  absl::Status error_;  // Set when state_ == kFailed.
  uint64_t size_ = 0;
  bool spilled_ = false;

  BlockBuffer memory_;                  // Memory mode: the bytes so far.
  // Bytes written to temp_file_ so far; declared first so that it is given back only
  // after the file is gone.
  SpillCharge spill_charge_;
  std::optional<TempFile> temp_file_;   // Spill mode.
  std::unique_ptr<char[]> write_buffer_;  // Spill mode, until Finish().
  size_t buffered_ = 0;                 // Bytes waiting in write_buffer_.

  ChecksumKind checksum_kind_;
  Checksum checksum_;
  std::string checksum_hex_;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_UPLOADED_FILE_H_
