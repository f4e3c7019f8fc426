// Ubuzima Sync — MIT licence.
// gzip encoding of bodies with zlib.
#include "http/compression.hpp"

#include <zlib.h>

#include <climits>

namespace ubuzima::server {

Result<std::string> gzip_compress(std::string_view data) {
    z_stream zs{};
    // windowBits 15 + 16 selects the gzip wrapper (what HTTP Content-Encoding: gzip means).
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return Status(ErrorCode::Internal, "deflateInit2 failed");
    std::string out;
    out.resize(deflateBound(&zs, static_cast<uLong>(data.size())));
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    const auto produced = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) return Status(ErrorCode::Internal, "deflate failed");
    out.resize(produced);
    return out;
}

Result<std::string> gzip_decompress(std::string_view data, std::size_t max_out) {
    if (data.size() > UINT_MAX) return Status(ErrorCode::TooLarge, "compressed body too large");
    z_stream zs{};
    // 15 + 32: accept gzip and zlib headers alike.
    if (inflateInit2(&zs, 15 + 32) != Z_OK) return Status(ErrorCode::Internal, "inflateInit2 failed");
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    std::string out;
    char chunk[16384];
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        zs.next_out = reinterpret_cast<Bytef*>(chunk);
        zs.avail_out = sizeof chunk;
        rc = inflate(&zs, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&zs);
            return Status(ErrorCode::BadRequest, "body is not valid gzip");
        }
        const std::size_t got = sizeof chunk - zs.avail_out;
        if (out.size() + got > max_out) {
            inflateEnd(&zs);
            return Status(ErrorCode::TooLarge, "decompressed body exceeds " + std::to_string(max_out) + " bytes");
        }
        out.append(chunk, got);
        // No progress with input left over means a truncated stream.
        if (rc == Z_OK && zs.avail_in == 0 && got == 0) {
            inflateEnd(&zs);
            return Status(ErrorCode::BadRequest, "gzip body is truncated");
        }
    }
    inflateEnd(&zs);
    return out;
}

}  // namespace ubuzima::server
