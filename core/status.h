// Status and Result<T>: how every fallible Quire function reports failure.
//
// Modelled on leveldb's Status and abseil's StatusOr. Foreign error codes (libuv errnos,
// llhttp HPE_*, WSLAY_ERR_*, SQLite rc) are translated into a Status once, in the module that
// calls the library.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace quire {

// A closed set of error kinds. Each maps to one HTTP status / protocol error code at the edge.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // malformed input from a client (bad JSON field, bad update bytes)
  kNotFound,          // the document (or other entity) does not exist
  kAlreadyExists,     // create with an id that is taken
  kFailedPrecondition,// the entity is in the wrong state (e.g. document deleted)
  kResourceExhausted, // a limit was hit (payload too large, queue full)
  kUnavailable,       // storage cannot accept writes now (sticky error, shutting down)
  kCorruption,        // stored data violates an invariant
  kIoError,           // the operating system or SQLite failed
  kInternal,          // a bug
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status ResourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: document abc does not exist"
  std::string ToString() const;

  // Explicitly discards a Status where ignoring it is correct (say why at the call site).
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                       // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace quire

// Returns early from the enclosing function when `expr` is not OK.
#define QUIRE_RETURN_IF_ERROR(expr)          \
  do {                                       \
    ::quire::Status quire_status_ = (expr);  \
    if (!quire_status_.ok()) return quire_status_; \
  } while (0)
