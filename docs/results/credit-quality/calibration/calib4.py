import random, time, sys, torch
from denser.models import load
from denser.eval import HFBackend
from denser.rewards import extract_answer
from denser.ground_truth import ChainProblem, first_wrong_char, CHAIN_SYSTEM_PROMPT
torch.set_num_threads(1)
model, tok = load("smollm2-135m-instruct")
backend = HFBackend.from_model(model, tok, autocast=torch.bfloat16)
SHOTS = [("2 + 5 - 3", "2 + 5 = 7\n7 - 3 = 4\nAnswer: 4"), ("6 - 4 + 7", "6 - 4 = 2\n2 + 7 = 9\nAnswer: 9"), ("3 + 1 + 2", "3 + 1 = 4\n4 + 2 = 6\nAnswer: 6"), ("5 - 2 - 1", "5 - 2 = 3\n3 - 1 = 2\nAnswer: 2")]
def messages(p, shots):
    m = [{"role": "system", "content": CHAIN_SYSTEM_PROMPT}]
    for q, a in SHOTS[:shots]:
        m += [{"role": "user", "content": f"Compute: {q}"}, {"role": "assistant", "content": a}]
    return m + [{"role": "user", "content": f"Compute: {p.question}"}]
variants = {"chat4_pm_1_5": (3, 1, 5, "+-", 4), "chat2_p_1_3": (3, 1, 3, "+", 2), "chat4_p_1_4": (3, 1, 4, "+", 4), "chat2_pm_1_9": (3, 1, 9, "+-", 2), "chat2_p_1_9": (3, 1, 9, "+", 2), "chat1_pm_1_9": (3, 1, 9, "+-", 1), "chat2_pm_1_5": (3, 1, 5, "+-", 2)}
N = int(sys.argv[1])
for name in sys.argv[2:]:
    terms, low, high, ops, shots = variants[name]
    rng = random.Random(0)
    probs = [ChainProblem(tuple(rng.randint(low, high) for _ in range(terms)), tuple(rng.choice(ops) for _ in range(terms - 1))) for _ in range(N)]
    prompts = [tok.apply_chat_template(messages(p, shots), add_generation_prompt=True, tokenize=True, return_dict=False) for p in probs]
    t = time.time(); correct = located = toks = steps = 0; texts = []
    for s in range(0, N, 16):
        out = backend.generate(prompts[s:s+16], n=4, temperature=0.7, max_tokens=48, seeds=[s])
        for p, comps in zip(probs[s:s+16], out):
            for c in comps:
                ok = extract_answer(c.text) == p.answer; correct += ok; toks += c.tokens; steps += c.text.count("=")
                located += (not ok) and first_wrong_char(c.text, p) is not None
                texts.append((p.question, p.answer, c.text))
    dt = time.time() - t
    print(name, "pass@1", correct / (4 * N), "located wrong", located / (4 * N), "mean tokens", toks / (4 * N), "mean '='", steps / (4 * N), "tok/s", toks / dt, "s", dt, flush=True)
    for q, a, txt in texts[:6]: print(repr(q), a, repr(txt[:120]))
