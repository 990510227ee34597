import random, time, sys, torch
from denser.models import load
from denser.eval import HFBackend
from denser.rewards import extract_answer
from denser.ground_truth import ChainProblem, first_wrong_char
torch.set_num_threads(1)
model, tok = load("smollm2-135m-instruct")
backend = HFBackend.from_model(model, tok, autocast=torch.bfloat16)
SYSTEM = "Compute step by step. Write one step per line as 'a + b = c', then the final line 'Answer: N'."
def spelled(p):
    steps = [f"{p.numbers[0]} {p.operators[0]} {p.numbers[1]}"] + [f"{op} {n}" for op, n in zip(p.operators[1:], p.numbers[2:])]
    return f"Compute {p.question}. First compute {steps[0]}, then " + ", then ".join(f"{s[0] and ('add' if s[0]=='+' else 'subtract')} {s.split()[1]}" for s in steps[1:]) + ". Write each step as an equation, then 'Answer: N'."
variants = {"plus_1_5_plain": (3, 1, 5, "+", "plain"), "plus_1_9_spelled": (3, 1, 9, "+", "spelled"), "pm_1_9_spelled": (3, 1, 9, "+-", "spelled"), "plus_1_5_spelled": (3, 1, 5, "+", "spelled")}
for name in sys.argv[1:]:
    terms, low, high, ops, style = variants[name]
    rng = random.Random(0)
    probs = [ChainProblem(tuple(rng.randint(low, high) for _ in range(terms)), tuple(rng.choice(ops) for _ in range(terms - 1))) for _ in range(32)]
    user = (lambda p: f"Compute: {p.question}") if style == "plain" else spelled
    prompts = [tok.apply_chat_template([{"role": "system", "content": SYSTEM}, {"role": "user", "content": user(p)}], add_generation_prompt=True, tokenize=True, return_dict=False) for p in probs]
    t = time.time(); correct = located = toks = steps = 0; texts = []
    for s in range(0, 32, 16):
        out = backend.generate(prompts[s:s+16], n=4, temperature=0.7, max_tokens=48, seeds=[s])
        for p, comps in zip(probs[s:s+16], out):
            for c in comps:
                ok = extract_answer(c.text) == p.answer; correct += ok; toks += c.tokens; steps += c.text.count("=")
                located += (not ok) and first_wrong_char(c.text, p) is not None
                texts.append((p.question, p.answer, c.text))
    dt = time.time() - t
    print(name, "pass@1", correct / 128, "located wrong", located / 128, "mean tokens", toks / 128, "mean '='", steps / 128, "tok/s", toks / dt, "s", dt, flush=True)
    print(user(probs[0]))
    for q, a, txt in texts[:8]: print(repr(q), a, repr(txt[:150]))
