// The server's request parser: first byte picks the endpoint (chat or completions), the rest is
// the HTTP body. An inline steering plan is then parsed and validated against the golden model,
// as the server does before it admits a request. Only HttpError (a 4xx answer) and critdim::Error
// may leave.
#include "critdim/steer.hpp"
#include "fuzz_util.hpp"
#include "server/request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::unique_ptr<critdim::model::Model> model =
        critdim::model::Model::load(critdim::fuzz::shared_dir() + "/golden/models/llama-deep-f32.gguf");
    if (size == 0) return 0;
    const bool chat = data[0] & 1;
    const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
    critdim::fuzz::expect_only_critdim_errors([&] {
        try {
            const critdim::server::ApiRequest r = critdim::server::parse_request(body, chat);
            if (r.steering && r.steering->plan) {
                critdim::steer::Plan plan = critdim::steer::parse_plan(r.steering->plan->dump(), "steering.plan", "");
                if (r.steering->alpha) plan.alpha = *r.steering->alpha;
                critdim::steer::Steering steering(*model, std::span<const critdim::steer::Plan>(&plan, 1));
                (void)steering.describe();
            }
        } catch (const critdim::server::HttpError&) {
        }
    });
    return 0;
}
