#include "server/upload/header_params.h"


namespace spillway {
namespace {

bool IsOws(char c) { return c == ' ' || c == '\t'; }

void SkipOws(std::string_view* s) {
  size_t i = 0;
  while (i < s->size() && IsOws((*s)[i])) ++i;
  s->remove_prefix(i);
}

}  // namespace

std::string_view TrimOws(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && IsOws(s[b])) ++b;
  while (e > b && IsOws(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string_view SplitHeaderValue(std::string_view value, std::string_view* params) {
  const size_t semi = value.find(';');
  if (semi == std::string_view::npos) {
    *params = std::string_view();
    return TrimOws(value);
  }
  *params = value.substr(semi + 1);
  return TrimOws(value.substr(0, semi));
}

bool HeaderParamReader::Next(std::string_view* attribute, std::string* value) {
  if (malformed_) return false;
  // Empty segments (";;", a leading or trailing ';') carry nothing; skip them.
  while (true) {
    SkipOws(&rest_);
    if (rest_.empty()) return false;
    if (rest_.front() != ';') break;
    rest_.remove_prefix(1);
  }

  size_t n = 0;
  while (n < rest_.size() && IsTokenChar(static_cast<unsigned char>(rest_[n]))) ++n;
  if (n == 0) {
    malformed_ = true;
    return false;
  }
  *attribute = rest_.substr(0, n);
  rest_.remove_prefix(n);
  SkipOws(&rest_);
  if (rest_.empty() || rest_.front() != '=') {
    malformed_ = true;
    return false;
  }
  rest_.remove_prefix(1);
  SkipOws(&rest_);

  value->clear();
  if (!rest_.empty() && rest_.front() == '"') {
    // Copies runs between backslashes in bulk: names are short, but this runs for
    // every parameter of every part.
    size_t i = 1;
    bool closed = false;
    while (i < rest_.size()) {
      size_t j = i;
      while (j < rest_.size() && rest_[j] != '"' && rest_[j] != '\\') ++j;
      value->append(rest_.data() + i, j - i);
      if (j == rest_.size()) {
        i = j;
        break;
      }
      if (rest_[j] == '"') {
        closed = true;
        i = j + 1;
        break;
      }
      // A backslash escapes '"' and '\\' only; before anything else it is kept.
      if (j + 1 < rest_.size() && (rest_[j + 1] == '"' || rest_[j + 1] == '\\')) {
        value->push_back(rest_[j + 1]);
        i = j + 2;
      } else {
        value->push_back('\\');
        i = j + 1;
      }
    }
    if (!closed) {
      malformed_ = true;
      return false;
    }
    rest_.remove_prefix(i);
  } else {
    size_t i = 0;
    while (i < rest_.size() && rest_[i] != ';' && !IsOws(rest_[i]) && rest_[i] != '"') ++i;
    if (i == 0) {
      malformed_ = true;
      return false;
    }
    value->assign(rest_.data(), i);
    rest_.remove_prefix(i);
  }

  // After a value only whitespace and then ';' or the end may follow.
  SkipOws(&rest_);
  if (!rest_.empty() && rest_.front() != ';') {
    malformed_ = true;
    return false;
  }
  return true;
}

}  // namespace spillway
