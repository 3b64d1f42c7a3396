// IsValidUtf8: whether bytes are well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF).
//
// Why it matters here: request metadata (header values, paths, multipart names and
// filenames) reaches gRPC consumers in proto3 `string` fields, which every protobuf
// runtime refuses to parse unless they are UTF-8. One such byte would break each
// consumer stream the upload reached in turn. HTTP allows such bytes (obs-text), so
// they are refused at the edge, with a 400 that says which field.
//
// Thread-safe (a pure function).
#ifndef SPILLWAY_SERVER_COMMON_UTF8_H_
#define SPILLWAY_SERVER_COMMON_UTF8_H_

#include <string_view>

namespace spillway {

bool IsValidUtf8(std::string_view bytes);

}  // namespace spillway

#endif  // SPILLWAY_SERVER_COMMON_UTF8_H_
