import pytest

from siftkit.relevance.lref import GRADES, SCALES, completion, judge_prompt, score_labels


@pytest.mark.parametrize("grades", [GRADES, SCALES["binary"].labels])
def test_shared_prefix_scoring_equals_chat_model_score(tiny_llm, grades):
    prompts = [judge_prompt("navy sofa", "Ashby navy velvet sofa", grades),
               judge_prompt("lamp", "Calder brass floor lamp with a long title", grades),
               "raw prompt text"]
    prefixes = ["", "Type: sofa matches.\n", "x\n"]
    fast = score_labels(tiny_llm, prompts, prefixes, grades)  # the core's shared-prefix path
    plain = tiny_llm.score([p for p in prompts for _ in grades],
                           [pre + completion(g) for pre in prefixes for g in grades])
    for i in range(len(prompts)):
        for j in range(len(grades)):
            assert fast[i][j] == pytest.approx(plain[i * len(grades) + j].logprob, abs=1e-3)
