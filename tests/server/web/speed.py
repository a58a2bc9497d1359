#!/usr/bin/python3
"""Playground speed (issue 14): time from submit to the first heatmap and to the first steered
token for a 64-token prompt, measured in headless Chromium from the page's own timestamps
(document.body.dataset.heatmapMs / firstSteeredMs: performance.now() from the click's handler).

    speed.py --critdim build/src/cli/critdim --out DIR [--runs 5] [--threads 2]

Model: critdim synth --config smollm2-135m --type q8_0 --seed 1 --plant default."""
import argparse
import json
import os
import statistics
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import playground_fixture as fx  # noqa: E402

fx.require_tools()
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def n_tokens(url, prompt):
    req = urllib.request.Request(url + 'v1/critdim/activations', json.dumps({'prompt': prompt, 'top': 1}).encode(),
                                 {'Content-Type': 'application/json'})
    return len(json.load(urllib.request.urlopen(req))['tokens'])


def prompt_of(url, want):
    words = ('the farmer counted 12 sheep and 30 goats in the big field so 42 animals ran to the little '
             'house where a happy friend was waiting to play with them before the long night came ').split() * 4
    full = ' '.join(words)
    lo, hi = 1, len(full)
    while lo < hi:  # the shortest prefix that reaches `want` tokens (BOS included)
        mid = (lo + hi) // 2
        if n_tokens(url, full[:mid]) >= want:
            hi = mid
        else:
            lo = mid + 1
    return full[:lo], n_tokens(url, full[:lo])


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--critdim', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--runs', type=int, default=5)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    model = os.path.join(a.out, 'smollm2-135m-q8_0-planted.gguf')
    if not os.path.exists(model):
        fx.run([a.critdim, 'synth', '--config', 'smollm2-135m', '--type', 'q8_0', '--seed', '1', '--plant',
                'default', '--out', model])
    truth = fx.plant_truth(a.critdim, model)
    crit = os.path.join(a.out, 'critical.json')
    with open(crit, 'w') as f:
        json.dump({'format': 'critdim.critical', 'version': 1,
                   'domains': [{'name': 'digits', 'dims': [{'dim': d, 'rank': 1} for d in truth['digit_dims']]},
                               {'name': 'refusal', 'dims': [{'dim': d, 'rank': 1} for d in truth['refusal_dims']]}]},
                  f)
    server = fx.Server(a.critdim, model, ['--dims', crit, '-t', str(a.threads)], os.path.join(a.out, 'serve.log'))
    d = fx.browser(fx.fresh_dir(os.path.join(a.out, 'downloads')))
    try:
        prompt, n = prompt_of(server.url, 64)
        d.get(server.url)
        WebDriverWait(d, 30).until(lambda d: d.execute_script('return document.body.dataset.ready === "1"'))
        el = lambda css: d.find_element(By.CSS_SELECTOR, css)  # noqa: E731
        for css, v in (('#watch-prompt', prompt), ('#gen-prompt', prompt), ('#gen-max', '8'), ('#watch-layer', '15')):
            el(css).clear()
            el(css).send_keys(v)
        if el('#gen-chat').is_selected():
            el('#gen-chat').click()  # plain text: the prompt is exactly the measured tokens
        el(f'#slider-{truth["refusal_dims"][0]}').send_keys(Keys.ARROW_LEFT)
        heat, first = [], []
        for _ in range(a.runs + 1):  # the first run warms caches and is not counted
            d.execute_script('delete document.body.dataset.heatmapMs')
            el('#watch-submit').click()
            WebDriverWait(d, 120).until(lambda d: d.execute_script('return document.body.dataset.heatmapMs'))
            heat.append(float(d.execute_script('return document.body.dataset.heatmapMs')))
            el('#gen-submit').click()
            WebDriverWait(d, 120).until(lambda d: d.execute_script('return document.body.dataset.genDone === "1"'))
            steered = d.execute_script('return document.body.dataset.firstSteeredMs')
            if steered is None:
                sys.exit('no steered token arrived: ' + el('#error').text + ' | ' + el('#out-steered-info').text)
            first.append(float(steered))
        heat, first = heat[1:], first[1:]
        print(f'prompt: {n} tokens; {a.threads} threads; {a.runs} runs after one warm-up')
        print(f'submit -> heatmap shown:       median {statistics.median(heat):.1f} ms  runs {[round(x, 1) for x in heat]}')
        print(f'submit -> first steered token: median {statistics.median(first):.1f} ms  runs {[round(x, 1) for x in first]}')
        d.save_screenshot(os.path.join(a.out, 'speed.png'))
    finally:
        d.quit()
        server.stop()


if __name__ == '__main__':
    main()
