// Request-target parsing for the HTTP server: path and query, percent-decoded once.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace quire::io::internal {

// Percent-decodes `s` ("%2F" -> "/"); with `plus_is_space`, '+' becomes ' ' (query strings).
// Malformed escapes are kept as they are.
std::string PercentDecode(std::string_view s, bool plus_is_space);

// Splits an origin-form target ("/a/b?x=1&y") into the decoded path and the decoded query
// pairs, in order ("y" has an empty value). An absolute-form target keeps only its path.
void ParseTarget(std::string_view target, std::string& path,
                 std::vector<std::pair<std::string, std::string>>& query);

}  // namespace quire::io::internal
