"""Test doubles for the LLM layer: a tiny random Llama and a scripted fake chat model.

* :func:`make_tiny_llama` writes a deterministic, random-init ``LlamaForCausalLM`` (hidden 64, 2 layers, 4 heads)
  with a byte-level BPE tokenizer trained locally on a built-in text, pad/bos/eos tokens and a minimal chat
  template. Load it with ``LocalChatModel.from_pretrained(path)``; it generates noise, quickly.
* :class:`FakeChatModel` answers without any model (reverses the last user message), counts the prompts it
  receives and can be told to fail; use it to test caching and batch plumbing.
* :class:`CharChatModel` is a proper (if random) character-level language model in closed form: its ``generate``,
  ``score`` and ``next_token_logprobs`` all read one distribution, so equivalences between them can be tested
  without torch.

Nothing here downloads anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import string
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

from siftkit.llm.base import Generation, GenerationParams, Prompt, Score, TokenDistribution, prompt_key, sha256_text

TINY_LLAMA_VERSION = "1"  # bump when the recipe below changes; folders from older recipes are rebuilt

TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_SPECIAL_TOKENS = ["<pad>", "<s>", "<|im_start|>", "<|im_end|>"]

_CORPUS = """\
A search engine ranks documents for a query. The first stage retrieves a few hundred candidates with BM25 or a
dense retriever; later stages rerank them with a stronger and slower model. Each stage trades recall for cost.
Relevance judgements come from assessors or from a language model acting as a judge. The judge reads the query
and the passage and answers yes or no; the log-probability of the answer word gives a graded score.
Metrics such as nDCG, MRR, recall and precision compare a ranked run with the judgements, query by query.
A recommender ranks items for a user from past clicks, ratings and purchases. Movies, shoes and songs are items.
Cascades train every stage jointly so that the final ranking, not each stage alone, is as good as possible.
Distillation moves the knowledge of a large teacher into a small student that is cheap to run at query time.
Caching keeps answers that were already computed, so a second run over the same prompts costs nothing.
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. How vexingly quick daft
zebras jump! Sphinx of black quartz, judge my vow. 0 1 2 3 4 5 6 7 8 9 10 100 1000. Yes. No. Relevant. Maybe.
user assistant system question answer passage document query score rank label true false good bad
"""


# ---------------------------------------------------------------------------------------------------------------------
# tiny Llama
# ---------------------------------------------------------------------------------------------------------------------

def _train_tokenizer():
    """A byte-level BPE trained on :data:`_CORPUS`, wrapped as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, min_frequency=1, special_tokens=_SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    numbers = " ".join(str(i) for i in range(2000))  # gives the trainer enough merges to reach ~1k tokens
    tok.train_from_iterator(_CORPUS.splitlines() + [numbers], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="<|im_end|>")
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def make_tiny_llama(path: str | Path, seed: int = 0, init_std: float = 0.5) -> Path:
    """Build (once) and save a tiny random-init ``LlamaForCausalLM`` plus tokenizer at ``path``.

    The recipe is deterministic: the same ``seed`` gives byte-identical weights and the same tokenizer. A folder
    that already holds this recipe's model is reused, so a session-scoped fixture builds it once. The folder is
    written atomically (temporary sibling, then rename), so concurrent builders are safe.

    Args:
        path: the model folder to create (its parent must be writable).
        seed: seeds a local ``torch.Generator`` for the weights; the global RNG is untouched.
        init_std: std of the normal init; larger than Llama's 0.02 so greedy outputs vary from token to token.

    Returns:
        ``path`` as a :class:`~pathlib.Path`, ready for ``LocalChatModel.from_pretrained``.

    Example:
        >>> from siftkit.llm.local import LocalChatModel
        >>> llm = LocalChatModel.from_pretrained(make_tiny_llama(tmp_path / "tiny"))  # doctest: +SKIP
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    stamp = {"recipe": "siftkit-tiny-llama", "version": TINY_LLAMA_VERSION, "seed": seed, "init_std": init_std}
    marker = path / "siftkit-tiny.json"
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return path

    tokenizer = _train_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, intermediate_size=128, max_position_embeddings=512, tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * init_std)
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "siftkit-tiny.json").write_text(json.dumps(stamp))
        tmp.chmod(0o755)
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        try:
            os.rename(tmp, path)
        except OSError:  # another process renamed its copy first
            if not marker.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# fake chat model
# ---------------------------------------------------------------------------------------------------------------------

def _last_user_text(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    users = [m.get("content", "") for m in prompt if m.get("role") == "user"]
    return users[-1] if users else ""


class FakeChatModel:
    """A scripted :class:`~siftkit.llm.base.ChatModel`: replies with the last user message reversed.

    Sample ``j`` of a sampled request (temperature > 0) gets the suffix ``" #j"``. ``score`` returns
    ``-len(continuation)``. ``next_token_logprobs`` gives each distinct character of the reply the probability
    count / length (most frequent first, then by first occurrence); an empty reply gives ``[("", 0.0)]`` and an
    ``error_on`` prompt an empty (malformed) distribution. Every prompt received is appended to :attr:`calls` (as
    canonical JSON), and, when ``log_path`` is given, to that file (one line each, flushed), so a test can count the
    prompts another process sent.

    Args:
        model_id: the name reported as ``model_id``.
        fingerprint: the value of ``fingerprint``.
        error_on: prompts whose last user text contains this string get ``finish_reasons == ["error"]``.
        delay_s: sleep this long per ``generate``/``score`` call.
        log_path: optional file that receives one line per prompt.
    """

    def __init__(self, model_id: str = "fake", fingerprint: str = "fake-v1", error_on: str | None = None,
                 delay_s: float = 0.0, log_path: str | Path | None = None):
        self.model_id = model_id
        self._fingerprint = fingerprint
        self.error_on = error_on
        self.delay_s = delay_s
        self.log_path = Path(log_path) if log_path else None
        self.calls: list[str] = []
        self.batches: list[int] = []
        self._lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def _record(self, keys: list[str]) -> None:
        with self._lock:
            self.calls.extend(keys)
            self.batches.append(len(keys))
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.writelines(k.replace("\n", " ") + "\n" for k in keys)
                    f.flush()
        if self.delay_s:
            time.sleep(self.delay_s)

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None) -> list[Generation]:
        params = params or GenerationParams()
        self._record([prompt_key(p) for p in prompts])
        out = []
        for p in prompts:
            text = _last_user_text(p)
            if self.error_on and self.error_on in text:
                out.append(Generation(texts=[""] * params.n, finish_reasons=["error"] * params.n))
                continue
            reply = text[::-1]
            texts = [reply if params.greedy else f"{reply} #{j}" for j in range(params.n)]
            out.append(Generation(texts=texts, finish_reasons=["stop"] * params.n, prompt_tokens=len(text),
                                  completion_tokens=len(reply)))
        return out

    def score(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[Score]:
        self._record([sha256_text(prompt_key(p), c) for p, c in zip(prompts, continuations)])
        return [Score(logprob=-float(len(c)), token_logprobs=[-1.0] * len(c)) for c in continuations]

    def next_token_logprobs(self, prompts: Sequence[Prompt], top_k: int = 20) -> list[TokenDistribution]:
        self._record([sha256_text("next_token", prompt_key(p)) for p in prompts])
        out = []
        for p in prompts:
            text = _last_user_text(p)
            if self.error_on and self.error_on in text:
                out.append(TokenDistribution(top=[]))
                continue
            reply = text[::-1]
            if not reply:
                out.append(TokenDistribution(top=[("", 0.0)]))
                continue
            chars = sorted(dict.fromkeys(reply), key=lambda ch: (-reply.count(ch), reply.index(ch)))
            out.append(TokenDistribution(top=[(ch, math.log(reply.count(ch) / len(reply))) for ch in chars[:top_k]]))
        return out


# ---------------------------------------------------------------------------------------------------------------------
# a closed-form character-level language model
# ---------------------------------------------------------------------------------------------------------------------

class CharChatModel(FakeChatModel):
    """A character-level language model whose next-token distribution is a softmax of hashed logits.

    The vocabulary is :data:`VOCAB`: digits, ASCII letters, a little punctuation, space and newline, plus the ten
    leading-space digit tokens ``" 0"`` .. ``" 9"`` (like a BPE tokenizer's). Text is tokenised greedily (a space
    followed by a digit is one token). After a context ``c`` (the prompt's canonical JSON plus the text so far),
    ``logit(t) = spread * u(fingerprint, c, t)`` with ``u`` uniform in [0, 1) from sha256, and
    ``p(t | c) = softmax(logit)``. ``generate`` decodes from it (greedy, or temperature sampling seeded per prompt and
    sample; ``top_p`` is ignored), ``score`` sums its log-probabilities over the continuation's tokens, and
    ``next_token_logprobs`` returns its top-k. No end-of-text token: generation runs to ``max_new_tokens`` or a stop.

    Args:
        spread: logit range; larger gives peakier distributions.
        **kwargs: as for :class:`FakeChatModel` (``error_on`` is not used).
    """

    VOCAB = tuple(string.digits + string.ascii_letters + " .,:;!?'-\n") + tuple(" " + d for d in string.digits)

    def __init__(self, model_id: str = "char", fingerprint: str = "char-v1", spread: float = 6.0, **kwargs):
        super().__init__(model_id=model_id, fingerprint=fingerprint, **kwargs)
        self.spread = spread

    def tokenize(self, text: str) -> list[str]:
        """Greedy longest match over :data:`VOCAB`; raises ``ValueError`` on a character outside it."""
        toks, i = [], 0
        while i < len(text):
            if text[i] == " " and i + 1 < len(text) and text[i + 1] in string.digits:
                toks.append(text[i:i + 2])
                i += 2
                continue
            if text[i] not in self.VOCAB:
                raise ValueError(f"character {text[i]!r} is not in CharChatModel's vocabulary")
            toks.append(text[i])
            i += 1
        return toks

    def logprobs(self, context: str) -> dict[str, float]:
        """log p(t | context) for every token t of the vocabulary."""
        logits = {t: self.spread * int(sha256_text(self.fingerprint, context, t)[:12], 16) / 16 ** 12
                  for t in self.VOCAB}
        m = max(logits.values())
        log_z = m + math.log(sum(math.exp(v - m) for v in logits.values()))
        return {t: v - log_z for t, v in logits.items()}

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None) -> list[Generation]:
        params = params or GenerationParams()
        self._record([prompt_key(p) for p in prompts])
        out = []
        for p in prompts:
            texts, reasons = [], []
            for j in range(params.n):
                seed = _fresh_seed() if params.seed is None else int(sha256_text(str(params.seed), prompt_key(p),
                                                                                   str(j))[:15], 16)
                text, reason = self._decode(prompt_key(p), params, random.Random(seed))
                texts.append(text)
                reasons.append(reason)
            out.append(Generation(texts=texts, finish_reasons=reasons, prompt_tokens=len(prompt_key(p)),
                                  completion_tokens=sum(len(self.tokenize(t)) for t in texts)))
        return out

    def _decode(self, context: str, params: GenerationParams, rng: random.Random) -> tuple[str, str]:
        text = ""
        for _ in range(params.max_new_tokens):
            lp = self.logprobs(context + text)
            if params.greedy:
                tok = max(lp, key=lambda t: (lp[t], t))
            else:
                toks = list(lp)
                tok = rng.choices(toks, weights=[math.exp(lp[t] / params.temperature) for t in toks])[0]
            text += tok
            cut = [k for k in (text.find(s) for s in params.stop) if k >= 0]
            if cut:
                return text[:min(cut)], "stop"
        return text, "length"

    def score(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[Score]:
        self._record([sha256_text(prompt_key(p), c) for p, c in zip(prompts, continuations)])
        out = []
        for p, c in zip(prompts, continuations):
            context, lps = prompt_key(p), []
            for tok in self.tokenize(c):
                lps.append(self.logprobs(context)[tok])
                context += tok
            out.append(Score(logprob=sum(lps), token_logprobs=lps))
        return out

    def next_token_logprobs(self, prompts: Sequence[Prompt], top_k: int = 20) -> list[TokenDistribution]:
        self._record([sha256_text("next_token", prompt_key(p)) for p in prompts])
        out = []
        for p in prompts:
            lp = self.logprobs(prompt_key(p))
            top = sorted(lp.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
            out.append(TokenDistribution(top=top))
        return out


def _fresh_seed() -> int:
    """A fresh random seed for unseeded sampling."""
    return random.SystemRandom().getrandbits(63)


class HashChatModel(FakeChatModel):
    """:class:`FakeChatModel` plus ``token_logprobs(text)`` (what ``siftkit serve llm`` scores with): one token per
    character, the first without a log-probability, character ``i`` with ``-1 - h / 6553.6`` where ``h`` is the first
    16 bits of sha256 of ``text[:i + 1]``. Every (prompt, continuation) pair thus scores differently and
    deterministically, so a judge's labels vary from item to item; for fault-injection tests and benchmarks."""

    def token_logprobs(self, text: str) -> list[tuple[str, float | None, int]]:
        return [(ch, None if i == 0 else -1 - int(hashlib.sha256(text[:i + 1].encode()).hexdigest()[:4], 16) / 6553.6,
                 i) for i, ch in enumerate(text)]
