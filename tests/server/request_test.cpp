// The request parser on its own (the fuzz_request target's code path): malformed bodies are
// HTTP 400 answers, never another exception.
#include "server/request.hpp"

#include <gtest/gtest.h>

namespace critdim::server {
namespace {

HttpError refusal(const std::string& body, bool chat) {
    try {
        parse_request(body, chat);
    } catch (const HttpError& e) {
        return e;
    }
    ADD_FAILURE() << "accepted: " << body;
    return {};
}

// nlohmann reports a number beyond double's range as out_of_range, not parse_error.
TEST(ServeRequest, NumberBeyondDoubleRangeIs400) {
    const HttpError e = refusal(R"({"prompt": "a", "temperature": 1e99999})", false);
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.message.rfind("request body is not valid JSON: ", 0), 0u) << e.message;
}

TEST(ServeRequest, BodiesThatAreNotObjectsAre400) {
    for (const std::string body : {"", "[]", "null", "\"text\"", "{", "{\"messages\": 5}"}) {
        const HttpError e = refusal(body, true);
        EXPECT_EQ(e.status, 400) << body;
        EXPECT_FALSE(e.message.empty()) << body;
    }
}

}  // namespace
}  // namespace critdim::server
