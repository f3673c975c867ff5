from siftkit.search_agent.reward import em_reward, exact_match, extract_answer, f1_score, format_reward, \
    normalize_answer


def test_squad_normalisation_cases():
    assert normalize_answer("The  Beijing!") == "beijing"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("Theatre") == "theatre"  # "the" only as a word
    assert normalize_answer("U.S.A.") == "usa"
    assert normalize_answer("  Wilhelm Conrad   Röntgen ") == "wilhelm conrad röntgen"


def test_exact_match_any_alias_and_none():
    assert exact_match("the USA", ["United States", "U.S.A."]) == 1.0
    assert exact_match("Canada", ["United States"]) == 0.0
    assert exact_match(None, ["x"]) == 0.0


def test_last_answer_block_of_the_response_only():
    resp = "<answer> Paris </answer> wait <search> q </search> <answer> Lyon </answer>"
    assert extract_answer(resp) == "Lyon"
    assert em_reward(resp, ["lyon"]) == 1.0
    assert em_reward("<search> q </search>", ["lyon"]) == 0.0  # no answer → 0
    # the template's example answer is in the prompt, never in the scored response
    assert em_reward("no tags here", ["Beijing"]) == 0.0


def test_f1_and_format_reward():
    assert f1_score("new york city", ["New York"]) == 2 * (2 / 3) * 1 / (2 / 3 + 1)
    assert format_reward("<answer> x </answer>", ["y"]) == 0.2
    assert format_reward("<answer> y </answer>", ["y"]) == 1.0
    assert format_reward("nothing", ["y"]) == 0.0
