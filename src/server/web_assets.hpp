// Internal: the playground's files (src/server/web/), compiled into the binary at build time by
// embed_web.cmake so the page works offline and needs no install step.
#pragma once

#include <string>
#include <string_view>

namespace critdim::server {

struct WebAsset {
    const char* name;          // "index.html"
    const char* content_type;  // "text/html; charset=utf-8"
    std::string_view body;
};

// The file of that name, or nullptr.
const WebAsset* find_web_asset(const std::string& name);

}  // namespace critdim::server
