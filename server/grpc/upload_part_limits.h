// The multipart limits (MultipartLimits: MAX_PARTS, MAX_PART_HEADER_BYTES,
// MAX_FIELD_SIZE) for the parts of a buffered Upload RPC. An HTTP upload's parts are
// held to them by its MultipartParser, as are a streamed Upload RPC's, which is framed
// as multipart and parsed; a buffered Upload RPC's Field and FileHeader messages reach
// no parser, so UploadReactor checks each with CheckPartLimits() before keeping it.
// Crossing a limit is the parser's error for it: kResourceExhausted carrying a
// MultipartError (kTooManyParts, kPartHeaderTooLarge, kFieldTooLarge), its message
// naming the setting.
//
// Free functions, no state; safe from any thread.
#ifndef SPILLWAY_SERVER_GRPC_UPLOAD_PART_LIMITS_H_
#define SPILLWAY_SERVER_GRPC_UPLOAD_PART_LIMITS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "server/upload/multipart_parser.h"
#include "spillway/v1/ingest.pb.h"

namespace spillway {

// The metadata bytes of a part: a Field's name, or a FileHeader's field name, filename
// and content type together. They are what an HTTP part carries in its header block;
// 0 for any other message.
uint64_t PartMetadataBytes(const v1::UploadRequest& request);

// OK unless `request`, a Field or FileHeader after `parts_before` parts, crosses
// `limits`: a part past max_parts; metadata (PartMetadataBytes) over
// max_part_header_bytes; a Field's value over max_field_size. An HTTP part's header
// block also holds the syntax around its metadata (header names, quotes, CRLFs), so a
// part a few dozen bytes under the limit here may be over it once framed in stream
// mode. OK for any other message.
absl::Status CheckPartLimits(const v1::UploadRequest& request, size_t parts_before,
                             const MultipartLimits& limits);

}  // namespace spillway

#endif  // SPILLWAY_SERVER_GRPC_UPLOAD_PART_LIMITS_H_
