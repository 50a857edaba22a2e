#pragma once
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of TFRecord framing and of
// Kiln checkpoint files.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kiln::io {

// Continues a CRC over more bytes: crc32c_extend(crc32c(a), b) == crc32c(a + b).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);

inline uint32_t crc32c(const void* data, size_t size) { return crc32c_extend(0, data, size); }
inline uint32_t crc32c(std::string_view data) { return crc32c(data.data(), data.size()); }

// TFRecord stores CRCs "masked" so that a CRC of data that itself contains CRCs stays well mixed.
constexpr uint32_t mask_crc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline uint32_t masked_crc32c(const void* data, size_t size) { return mask_crc32c(crc32c(data, size)); }

}  // namespace kiln::io
