#pragma once
// Strict number parsing for CSV fields: the whole field must be one number. Leading and trailing
// spaces or tabs and a leading '+' are accepted; so are the spellings std::from_chars knows for
// infinity and NaN ("inf", "infinity", "nan", any case). Anything else, an empty field, or a value
// out of the type's range is rejected, so "12abc" or "1e999" never turns silently into a number.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kiln::io {

bool parse_double(std::string_view text, double* out);
// parse_double() of n fields: ok[i] says whether fields[i] parsed, and out[i] is then its value.
// The 17 bytes from each field's start must be readable, past its end too (CSV chunks keep
// padding after their text): the short numbers most fields hold are then read without branching
// on their length.
void parse_padded_doubles(const std::string_view* fields, size_t n, double* out, uint8_t* ok);
bool parse_int64(std::string_view text, int64_t* out);

}  // namespace kiln::io
