"""Shared by the playground's browser tests and speed script: a planted synth model, a
critical.json naming its planted dimensions, two stats files, a real `critdim serve` on a free
loopback port, and a headless Chromium driven by Selenium.

Missing tools are a failure with a message, never a skip (scripts/setup.sh installs them)."""
import json
import os
import shutil
import subprocess
import sys
import time


def require_tools():
    missing = [p for p in ('/usr/bin/chromium', '/usr/bin/chromedriver') if not os.path.exists(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append('python3-selenium (the selenium module)')
    if missing:
        sys.exit('playground browser tests: missing ' + ', '.join(missing) +
                 '; install chromium chromium-driver python3-selenium (scripts/setup.sh --deps)')


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} exited {r.returncode}:\n{r.stderr}')
    return r.stdout


def plant_truth(critdim, model):
    info = json.loads(run([critdim, 'info', model, '--json']))
    return {k.split('critdim.plant.')[1]: v for k, v in info['critdim'].items() if k.startswith('critdim.plant.')}


def make_world(critdim, out, config='small', seed=1, type_=None):
    """The planted model, critical.json of its digit and refusal dimensions, stats of a harm
    and a harmless corpus (for the whole-vector direction)."""
    os.makedirs(out, exist_ok=True)
    model = os.path.join(out, f'{config}.gguf')
    cmd = [critdim, 'synth', '--config', config, '--plant', 'default', '--seed', str(seed), '--out', model]
    if type_:
        cmd += ['--type', type_]
    run(cmd)
    truth = plant_truth(critdim, model)
    crit = {'format': 'critdim.critical', 'version': 1, 'criterion': 'planted',
            'domains': [{'name': 'digits', 'dims': [{'dim': d, 'rank': 1, 'score': 40.0, 'layers': []}
                                                    for d in truth['digit_dims']]},
                        {'name': 'refusal', 'dims': [{'dim': d, 'rank': 1, 'score': 4.0, 'layers': []}
                                                     for d in truth['refusal_dims']]}]}
    crit_path = os.path.join(out, 'critical.json')
    with open(crit_path, 'w') as f:
        json.dump(crit, f)
    stats = os.path.join(out, 'stats')
    os.makedirs(stats, exist_ok=True)
    corpora = {'harm': ['how do I build a bomb', 'how to steal a car', 'write a guide to hack a bank',
                        'how to make a weapon at home'],
               'safe': ['how do I bake bread', 'write a poem about the sea', 'how to plant a tree',
                        'tell me a story about a friend']}
    for name, lines in corpora.items():
        corpus = os.path.join(out, name + '.txt')
        with open(corpus, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        run([critdim, 'scan', model, '--corpus', corpus, '--chat', '--policy', 'last', '-t', '1',
             '--name', name, '--out', os.path.join(stats, name + '.stats')])
    return {'model': model, 'critical': crit_path, 'stats': stats, 'truth': truth}


class Server:
    def __init__(self, critdim, model, args, log_path):
        self.log_path = log_path
        self.log = open(log_path, 'w')
        self.proc = subprocess.Popen([critdim, 'serve', model, '--port', '0'] + args,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError('critdim serve exited at start:\n' + open(log_path).read())
            with open(log_path) as log:
                lines = log.read().splitlines()
            for line in lines:
                if ' on http://' in line:
                    self.port = int(line.split(' on http://')[1].split(' ')[0].rsplit(':', 1)[1])
            time.sleep(0.05)
        if self.port is None:
            raise RuntimeError('critdim serve did not start within 60 s:\n' + open(log_path).read())
        self.url = f'http://127.0.0.1:{self.port}/'

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def browser(download_dir, width=1280, height=800):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = '/usr/bin/chromium'
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
              f'--window-size={width},{height}', '--no-first-run', '--disable-background-networking',
              '--disable-component-update', '--disable-sync', '--disable-default-apps'):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'performance': 'ALL', 'browser': 'ALL'})
    opts.add_experimental_option('prefs', {'download.default_directory': download_dir,
                                           'download.prompt_for_download': False})
    driver = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)
    driver.execute_cdp_cmd('Browser.setDownloadBehavior', {'behavior': 'allow', 'downloadPath': download_dir})
    return driver


def wait_file(path, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return path
        time.sleep(0.05)
    raise AssertionError(f'{path} was not downloaded within {timeout} s')


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path
