#include "eval/eval_test_util.hpp"

#include <fstream>

#include "test_util.hpp"

namespace critdim::eval::test {

std::string data_dir() { return critdim::test::shared_dir() + "/data"; }
std::string stories() { return critdim::test::shared_dir() + "/golden/models/stories260K-f32.gguf"; }

const model::Model& stories_model() {
    static const std::unique_ptr<model::Model> m = model::Model::load(stories());
    return *m;
}

const tokenizer::Tokenizer& stories_tokenizer() {
    static const std::unique_ptr<tokenizer::Tokenizer> t = tokenizer::Tokenizer::from_gguf(stories_model().file());
    return *t;
}

std::string write_file(const std::string& name, const std::string& text) {
    const std::string path = critdim::test::temp_dir("eval") + "/" + name;
    std::ofstream(path) << text;
    return path;
}

}  // namespace critdim::eval::test
