import random, re, time, sys, torch
from denser.models import load
from denser.eval import HFBackend
from denser.rewards import extract_answer
torch.set_num_threads(1)
model, tok = load("smollm2-135m-instruct")
backend = HFBackend.from_model(model, tok, autocast=torch.bfloat16)
SYSTEM = "Compute step by step. Write one step per line as 'a + b = c', then the final line 'Answer: N'."
def problem(rng, terms, ops):
    nums = [rng.randint(1, 9) for _ in range(terms)]
    ops_ = [rng.choice(ops) for _ in range(terms - 1)]
    value = nums[0]
    for o, n in zip(ops_, nums[1:]):
        value = value + n if o == "+" else value - n
    return " ".join([str(nums[0])] + [f"{o} {n}" for o, n in zip(ops_, nums[1:])]), value
EXAMPLE = "Example: 2 + 5 - 3\n2 + 5 = 7\n7 - 3 = 4\nAnswer: 4\n\n"
variants = {
 "3t_pm_fewshot": (3, "+-", True),
 "3t_p_fewshot": (3, "+", True),
 "3t_pm_plain": (3, "+-", False),
}
which = sys.argv[1:] or list(variants)
for name in which:
    terms, ops, shot = variants[name]
    rng = random.Random(0)
    probs = [problem(rng, terms, ops) for _ in range(48)]
    prompts = [tok.apply_chat_template([{"role": "system", "content": SYSTEM}, {"role": "user", "content": (EXAMPLE if shot else "") + f"Compute: {q}"}], add_generation_prompt=True, tokenize=True, return_dict=False) for q, _ in probs]
    t = time.time(); correct = 0; toks = 0; steps = 0; texts = []
    for s in range(0, 48, 12):
        out = backend.generate(prompts[s:s+12], n=4, temperature=0.7, max_tokens=64, seeds=[s])
        for (q, a), comps in zip(probs[s:s+12], out):
            for c in comps:
                correct += extract_answer(c.text) == str(a); toks += c.tokens; steps += c.text.count("=")
                texts.append((q, a, c.text))
    dt = time.time() - t
    print(name, "pass@1", correct / 192, "mean tokens", toks / 192, "mean '=' ", steps / 192, "tok/s", toks / dt, "s", dt, flush=True)
    for q, a, txt in texts[:6]: print(repr(q), a, repr(txt))
