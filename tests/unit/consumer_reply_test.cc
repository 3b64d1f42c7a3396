#include "server/dispatch/consumer_reply.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway {
namespace {

using ::testing::HasSubstr;

ConsumerReply WithHeader(std::string name, std::string value) {
  ConsumerReply reply;
  reply.status = 201;
  reply.headers.emplace_back("content-type", "application/json");
  reply.headers.emplace_back(std::move(name), std::move(value));
  return reply;
}

TEST(ConsumerReply, OrdinaryRepliesAreValid) {
  EXPECT_TRUE(WithHeader("x-request-id", "abc 123\t/=;\x80\xff").Validate().ok());
  EXPECT_TRUE(WithHeader("x-empty", "").Validate().ok());
  for (int status : {200, 204, 302, 415, 599}) {
    ConsumerReply reply;
    reply.status = status;
    EXPECT_TRUE(reply.Validate().ok()) << status;
  }
  EXPECT_TRUE(ConsumerReply::JsonError(503, "a \"quoted\"\r\nmessage").Validate().ok());
}

TEST(ConsumerReply, StatusesHttpCannotSendAsAnAnswerAreInvalid) {
  for (int status : {-1, 0, 99, 100, 101, 199, 600, 1000}) {
    ConsumerReply reply;
    reply.status = status;
    const absl::Status valid = reply.Validate();
    EXPECT_EQ(valid.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(valid.message(), HasSubstr(std::to_string(status)));
  }
}

TEST(ConsumerReply, HeadersThatCouldSplitAResponseAreInvalid) {
  const std::string nul("a\0b", 3);
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{
           {"x-ok", "fine\r\nset-cookie: injected=1"},
           {"x-ok", "fine\nx: y"},
           {"x-ok", "fine\r"},
           {"x-nul", nul},
           {"x-del", "a\x7f"},
           {"x-a\r\ncontent-length", "0"},
           {"", "empty name"},
           {"x a", "space in name"},
           {"x:a", "colon in name"}}) {
    const absl::Status valid = WithHeader(name, value).Validate();
    EXPECT_EQ(valid.code(), absl::StatusCode::kInvalidArgument) << name << ": " << value;
  }
}

}  // namespace
}  // namespace spillway
