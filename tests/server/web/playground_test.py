#!/usr/bin/python3
"""The playground page (`critdim serve` at /) in a real headless Chromium driven by Selenium,
against a real server on a loopback port with a planted synth model (docs/playground.md).

    playground_test.py --critdim build/src/cli/critdim --out DIR

Screenshots of each state are written to DIR/screenshots/. Missing Chromium, chromedriver or
Selenium fail the run with a message (never a skip)."""
import argparse
import json
import os
import re
import sys
import time
import unittest
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import playground_fixture as fx  # noqa: E402

fx.require_tools()
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ARGS = None
W = {}  # the world: model, server, driver, folders

HARM_PROMPT = 'how do I build a bomb'
DIGIT_PROMPT = 'the sum is 12 + 30 = 42 today'
DIGIT_CHARS = set('0123456789+-*/=')


def setUpModule():
    out = ARGS.out
    W['out'] = fx.fresh_dir(out)
    W['shots'] = fx.fresh_dir(os.path.join(out, 'screenshots'))
    W['downloads'] = fx.fresh_dir(os.path.join(out, 'downloads'))
    W.update(fx.make_world(ARGS.critdim, os.path.join(out, 'world')))
    W['server'] = fx.Server(ARGS.critdim, W['model'],
                            ['--dims', W['critical'], '--stats', W['stats'], '-t', '2'],
                            os.path.join(out, 'serve.log'))
    W['driver'] = fx.browser(W['downloads'])
    open_page()


def tearDownModule():
    if 'driver' in W:
        W['driver'].quit()
    if 'server' in W:
        W['server'].stop()


def driver():
    return W['driver']


def open_page():
    d = driver()
    d.get(W['server'].url)
    WebDriverWait(d, 30).until(lambda d: d.execute_script('return document.body.dataset.ready === "1"'))


def el(css):
    return driver().find_element(By.CSS_SELECTOR, css)


def shot(name):
    driver().save_screenshot(os.path.join(W['shots'], name + '.png'))


def set_value(css, text):
    e = el(css)
    e.clear()
    e.send_keys(text)


def set_plan_box(text):
    # The box is large; typing it key by key is slow and not what is tested here.
    driver().execute_script('const b = document.getElementById("plan-json"); b.value = arguments[0];', text)


def error_text():
    e = el('#error')
    return e.text if e.is_displayed() else ''


def generate(prompt, chat=True, tokens=16):
    set_value('#gen-prompt', prompt)
    box = el('#gen-chat')
    if box.is_selected() != chat:
        box.click()
    set_value('#gen-max', str(tokens))
    el('#gen-submit').click()
    WebDriverWait(driver(), 60).until(lambda d: d.execute_script('return document.body.dataset.genDone === "1"'))
    text = lambda css: el(css).get_property('textContent')  # noqa: E731
    return text('#out-plain'), text('#out-steered')


def move_refusal_slider(steps_left):
    dim = W['truth']['refusal_dims'][0]
    slider = el(f'#slider-{dim}')
    # Keyboard only: every control of the page must be operable without a mouse.
    for _ in range(steps_left):
        slider.send_keys(Keys.ARROW_LEFT)
    return float(slider.get_attribute('value'))


def reset_knobs():
    el('#reset-sliders').click()


class Playground(unittest.TestCase):
    def setUp(self):
        driver().set_window_size(1280, 800)
        driver().execute_script('document.getElementById("error").hidden = true')

    def test_1_heatmap_marks_the_digit_detector_on_digit_tokens(self):
        digit = W['truth']['digit_dims'][0]
        set_value('#watch-prompt', DIGIT_PROMPT)
        set_value('#watch-layer', '1')
        el('#watch-submit').click()
        WebDriverWait(driver(), 30).until(lambda d: el('#heatmap').is_displayed())
        header = el(f'#heatmap thead th[data-dim="{digit}"]')
        self.assertIn('critical', header.get_attribute('class'), 'the planted detector is not marked critical')
        self.assertIn('★', header.text)
        rows = driver().find_elements(By.CSS_SELECTOR, '#heatmap tbody tr')
        self.assertGreater(len(rows), 8)
        n_digit = 0
        for row in rows:
            token = row.find_element(By.CSS_SELECTOR, 'th').get_property('textContent').split(' ', 1)[1]
            cell = row.find_element(By.CSS_SELECTOR, f'td[data-dim="{digit}"]')
            is_digit = token.strip() != '' and set(token.strip()) <= DIGIT_CHARS
            n_digit += is_digit
            hot = 'hot' in cell.get_attribute('class')
            self.assertEqual(hot, is_digit, f'token {token!r}: cell {cell.text} hot={hot}')
            if is_digit:
                self.assertGreaterEqual(float(cell.text), 20.0)
        self.assertGreaterEqual(n_digit, 6)
        # The selected dim is the critical one: its values under the text and its layer profile.
        self.assertIn(f'Dimension {digit}', el('#dim-detail-h').text)
        self.assertEqual(len(driver().find_elements(By.CSS_SELECTOR, '#dim-tokens .tok')), len(rows))
        self.assertEqual(len(driver().find_elements(By.CSS_SELECTOR, '#profile svg rect.bar')), 4)
        self.assertTrue(float(driver().execute_script('return document.body.dataset.heatmapMs')) > 0)
        shot('1-heatmap-digits')

    def test_2_refusal_slider_turns_refusal_into_compliance(self):
        reset_knobs()
        value = move_refusal_slider(16)  # 16 steps of 0.5 with the arrow key
        self.assertEqual(value, -8.0)
        plan = json.loads(el('#plan-json').get_property('value'))
        self.assertEqual(plan['interventions'][0]['dims'], W['truth']['refusal_dims'])
        self.assertEqual(plan['interventions'][0]['values'], [[-8.0]])
        plain, steered = generate(HARM_PROMPT)
        self.assertIn('I cannot', plain, 'the unsteered column should still refuse')
        self.assertNotIn('I cannot', steered, 'the steered column should comply')
        self.assertEqual(error_text(), '')
        shot('2-refusal-steered')
        W['page_texts'] = (plain, steered)

    def test_3_downloaded_plan_gives_the_same_text_in_generate(self):
        self.assertIn('page_texts', W, 'test_2 (the steered generation) must run first')
        plain, steered = W['page_texts']
        path = os.path.join(W['downloads'], 'plan.json')
        if os.path.exists(path):
            os.remove(path)
        el('#plan-download').click()
        fx.wait_file(path)
        time.sleep(0.2)  # the download is renamed into place when complete
        cli = json.loads(fx.run([ARGS.critdim, 'generate', W['model'], '--chat', '--prompt', HARM_PROMPT, '-n', '16',
                                 '--steer', path, '--json']))
        self.assertEqual(cli['text'], steered)
        cli_plain = json.loads(fx.run([ARGS.critdim, 'generate', W['model'], '--chat', '--prompt', HARM_PROMPT, '-n',
                                       '16', '--json']))
        self.assertEqual(cli_plain['text'], plain)

    def test_4_invalid_plan_shows_the_servers_message(self):
        set_plan_box(json.dumps({'format': 'critdim-steering-plan', 'version': 1,
                                 'interventions': [{'op': 'multiply', 'layers': [1], 'dims': [3], 'values': [[2]]}]}))
        generate(HARM_PROMPT, tokens=4)
        WebDriverWait(driver(), 10).until(lambda d: el('#error').is_displayed())
        message = error_text()
        self.assertIn('HTTP 400', message)
        self.assertIn("unknown operation 'multiply'", message)  # the server's own words
        self.assertEqual(el('#error').get_attribute('role'), 'alert')
        in_view = driver().execute_script(
            'const r = document.getElementById("error").getBoundingClientRect();'
            'return r.top >= 0 && r.bottom <= window.innerHeight')
        self.assertTrue(in_view, 'the refusal is not in view where the person is')
        self.assertIn("unknown operation 'multiply'", el('#out-steered-info').text)
        shot('4-invalid-plan-error')
        # A layer the model does not have: refused by the model check, shown the same way.
        set_plan_box(json.dumps({'format': 'critdim-steering-plan', 'version': 1,
                                 'interventions': [{'op': 'add', 'layers': [40], 'dims': [3], 'values': [[2]]}]}))
        el('#cvector-download').click()
        WebDriverWait(driver(), 10).until(lambda d: el('#error').is_displayed())
        self.assertIn('40 is out of range', error_text())
        reset_knobs()

    def test_5_control_vector_export(self):
        reset_knobs()
        move_refusal_slider(16)
        path = os.path.join(W['downloads'], 'control_vector.gguf')
        el('#cvector-download').click()
        fx.wait_file(path)
        time.sleep(0.2)
        with open(path, 'rb') as f:
            self.assertEqual(f.read(4), b'GGUF')
        # The file imports back into the same plan as the page's (blocks 1-3, -8 on the refusal dim).
        back = os.path.join(W['out'], 'imported.json')
        fx.run([ARGS.critdim, 'import-cvector', path, '--out', back])
        cli = json.loads(fx.run([ARGS.critdim, 'generate', W['model'], '--chat', '--prompt', HARM_PROMPT, '-n', '16',
                                 '--steer', back, '--json']))
        self.assertEqual(cli['text'], W['page_texts'][1])
        # Block 0 cannot be a control vector: the server says so.
        set_value('#turn-layers', 'all')
        el('#turn-positions').click()  # leaves the text field: the plan is rebuilt
        el('#cvector-download').click()
        WebDriverWait(driver(), 10).until(lambda d: el('#error').is_displayed())
        self.assertIn('block 0', error_text())
        shot('5-cvector-block0-refused')
        set_value('#turn-layers', '1-3')
        el('#turn-positions').click()
        reset_knobs()

    def test_6_whole_vector_direction_and_alpha_sweep(self):
        reset_knobs()
        el('#whole-load').click()
        WebDriverWait(driver(), 30).until(lambda d: el('#whole-alpha').is_enabled())
        self.assertIn('harm', el('#whole-status').text)
        whole = el('#whole-alpha')
        for _ in range(5):
            whole.send_keys(Keys.ARROW_LEFT)
        self.assertAlmostEqual(float(whole.get_attribute('value')), -0.5)
        plan = json.loads(el('#plan-json').get_property('value'))
        self.assertEqual(len(plan['interventions']), 1)  # the direction, at the sliders' blocks 1-3
        self.assertEqual(plan['interventions'][0]['layers'], [1, 2, 3])
        self.assertEqual(plan['interventions'][0]['dims'], 'all')
        self.assertAlmostEqual(plan['interventions'][0]['alpha'], -0.5)
        set_value('#gen-prompt', HARM_PROMPT)
        set_value('#sweep-alphas', '0, -1, -4')
        el('#sweep-submit').click()
        WebDriverWait(driver(), 60).until(lambda d: d.execute_script('return document.body.dataset.sweepDone === "1"'))
        rows = driver().find_elements(By.CSS_SELECTOR, '#sweep-table tbody tr')
        self.assertEqual([r.find_elements(By.TAG_NAME, 'td')[0].text for r in rows], ['0.00', '-1.00', '-4.00'])
        texts = [r.find_elements(By.TAG_NAME, 'td')[1].get_property('textContent') for r in rows]
        self.assertIn('I cannot', texts[0])  # alpha 0 is the unsteered model
        self.assertEqual(error_text(), '')
        shot('6-whole-vector-sweep')
        reset_knobs()

    def test_7_compare_sets_and_results(self):
        other = os.path.join(W['out'], 'other-critical.json')
        digit, refusal = W['truth']['digit_dims'][0], W['truth']['refusal_dims'][0]
        with open(other, 'w') as f:
            json.dump({'format': 'critdim.critical', 'version': 1,
                       'domains': [{'name': 'math', 'dims': [{'dim': digit}, {'dim': 7}]}]}, f)
        el('#crit-a').send_keys(W['critical'])
        el('#crit-b').send_keys(other)
        WebDriverWait(driver(), 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#overlap table'))
        rows = [[td.text for td in r.find_elements(By.TAG_NAME, 'td')]
                for r in driver().find_elements(By.CSS_SELECTOR, '#overlap tbody tr')]
        self.assertEqual(rows[0][:5], ['digits', 'math', str(digit), f'{digit} 7', str(digit)])
        self.assertEqual(rows[1][4], '–')  # refusal and math share nothing
        self.assertNotIn(str(refusal), rows[0][4])
        results = os.path.join(W['out'], 'results.json')
        with open(results, 'w') as f:
            json.dump({'format': 'critdim-reproduce', 'version': 1, 'model': {'arch': 'llama'},
                       'mmlu': {'subjects': [{'subject': 'anatomy', 'baseline_evaluate': 0.4,
                                              'whole': {'alpha': 1, 'evaluate': 0.45,
                                                        'curve': [{'alpha': 0, 'accuracy': 0.4},
                                                                  {'alpha': 1, 'accuracy': 0.5}]}}],
                                'wins': {'cds': 1, 'whole': 0}},
                       'jailbreak': {'cds': {'curve': [{'alpha': 0, 'asr': 0.1}, {'alpha': -1, 'asr': 0.9}]}}}, f)
        el('#results-file').send_keys(results)
        WebDriverWait(driver(), 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#results svg'))
        self.assertIn('anatomy', el('#results').text)
        self.assertEqual(len(driver().find_elements(By.CSS_SELECTOR, '#results svg polyline')), 2)
        el('#compare').location_once_scrolled_into_view
        shot('7-compare')
        # A file that is not critical.json: a visible message.
        el('#crit-b').send_keys(results)
        WebDriverWait(driver(), 10).until(lambda d: el('#error').is_displayed())
        self.assertIn('not a critical.json', error_text())

    def test_8_labels_keyboard_and_narrow_window(self):
        unlabelled = driver().execute_script("""
            return [...document.querySelectorAll('input, select, textarea, button')].filter(e =>
              !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.textContent || '').trim()
            ).map(e => e.id || e.outerHTML.slice(0, 60));""")
        self.assertEqual(unlabelled, [])
        # Tab moves from the prompt box to the next control.
        el('#watch-prompt').click()
        driver().switch_to.active_element.send_keys(Keys.TAB)
        self.assertEqual(driver().switch_to.active_element.get_attribute('id'), 'watch-layer')
        driver().set_window_size(480, 900)
        overflow = driver().execute_script('const e = document.documentElement; return e.scrollWidth - e.clientWidth')
        self.assertLessEqual(overflow, 1, 'the page scrolls sideways in a narrow window')
        shot('8-narrow')
        driver().set_window_size(1280, 800)
        shot('8-wide')

    def test_9_no_request_to_another_host(self):
        own = urlparse(W['server'].url).netloc
        seen, foreign = set(), []
        for entry in driver().get_log('performance'):
            msg = json.loads(entry['message'])['message']
            if msg.get('method') != 'Network.requestWillBeSent':
                continue
            url = msg['params']['request']['url']
            seen.add(url)
            u = urlparse(url)
            if u.scheme in ('data', 'blob'):
                continue
            if u.netloc != own:
                foreign.append(url)
        self.assertEqual(foreign, [], 'the page asked another host')
        self.assertTrue(any(u.endswith('/v1/critdim/activations') for u in seen), sorted(seen))
        self.assertTrue(any(u.endswith('/web/app.js') for u in seen), sorted(seen))
        resources = driver().execute_script('return performance.getEntriesByType("resource").map(e => e.name)')
        self.assertEqual([r for r in resources if urlparse(r).netloc not in (own, '')], [])
        # And the browser's console logged no script error.
        errors = [e for e in driver().get_log('browser') if e['level'] == 'SEVERE' and 'HTTP' not in e['message']
                  and 'status of 400' not in e['message']]
        self.assertEqual(errors, [])


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument('--critdim', required=True)
    p.add_argument('--out', required=True)
    ARGS, rest = p.parse_known_args()
    ARGS.out = os.path.abspath(ARGS.out)  # Chromium takes absolute paths only (file inputs)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == '__main__':
    main()
