// Plain value types shared by the Spillway client library's Consumer and Uploader.
// No gRPC or Protobuf types appear in the client's public headers.
#ifndef SPILLWAY_CLIENT_TYPES_H_
#define SPILLWAY_CLIENT_TYPES_H_

#include <cstdint>
#include <string>
#include <vector>

namespace spillway::client {

// One HTTP header (or gRPC upload header). Names arrive lower-cased from the server.
struct Header {
  std::string name;
  std::string value;
};

// The answer to one upload: it becomes the uploader's HTTP response (or the Upload
// RPC's response). A status outside 200..599 makes the server answer 502 instead.
struct Reply {
  uint32_t status = 200;
  std::vector<Header> headers;
  std::string body;
};

}  // namespace spillway::client

#endif  // SPILLWAY_CLIENT_TYPES_H_
