"""The look and the safety of hilt's HTML pages (the nightly report, the run comparison): one stylesheet, one
Content-Security-Policy and one inline watcher script, so the pages look alike and are checked alike.

The policy forbids every fetch (a page opened from a mail attachment looks as it does on the CI server); the
script records script errors and policy violations into attributes of <html>, which is how the tests (headless
Chromium) see that a page rendered cleanly.
"""

from __future__ import annotations

from html import escape

#: Nothing is fetched: styles and the one script are inline, charts are inline SVG.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:16px;color:#1b1f24}
h1{font-size:22px;margin:4px 0}h2{font-size:18px;border-bottom:1px solid #ddd;margin-top:28px}
h3{font-size:15px;margin:18px 0 4px;font-family:ui-monospace,monospace}
table{border-collapse:collapse;width:100%;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f5f6f8}.muted{color:#667}
.badge{display:inline-block;padding:0 8px;border-radius:9px;color:#fff;font-weight:600}
.s-pass{background:#1a7f37}.s-fail{background:#cf222e}.s-broken{background:#bc4c00}
.k-regression{color:#cf222e;font-weight:600}.k-improvement{color:#0969da;font-weight:600}
svg.trend-chart{display:block;max-width:100%;height:auto}
svg .plot{fill:#fff;stroke:#ccc}svg .grid{stroke:#eee}svg text{font-size:10px;fill:#555}
svg .band{fill:#1a7f37;fill-opacity:.12}svg .baseline{stroke:#1a7f37;stroke-dasharray:4 3}
svg .line{fill:none;stroke-width:1.4}svg .img-tick{stroke:#888}svg .version-change{stroke:#888;stroke-dasharray:2 3}
svg .legend text{font-size:11px;fill:#1b1f24}
svg .cp{stroke-width:2;stroke-dasharray:5 3}svg .cp-regression{stroke:#cf222e}
svg .cp-improvement{stroke:#0969da}svg circle.pt{stroke-width:1.5}
.v-pass{fill:#1a7f37;color:#1a7f37}.v-regression{fill:#cf222e;color:#cf222e}
.v-improvement{fill:#0969da;color:#0969da}.v-inconclusive{fill:#d4a72c;color:#9a6700}
.v-unbaselined,.v-none{fill:#8c959f;color:#8c959f}
.attn{display:inline-block;padding:0 6px;border-radius:9px;font-size:12px;font-weight:600;color:#fff}
.attn-failing,.attn-regressed{background:#cf222e}.attn-changed{background:#0969da}
details.run{border:1px solid #ddd;border-radius:4px;margin:4px 0;padding:2px 8px}
details.run>summary{cursor:pointer}section.run:target details{outline:2px solid #0969da}
pre{white-space:pre-wrap;margin:2px 0;font-size:12px}
ul.versions{margin:0;padding-left:16px}
.tstate,.outlier-flag{display:inline-block;padding:0 6px;border-radius:9px;font-size:12px;font-weight:600;color:#fff}
.t-broken,.outlier-flag{background:#cf222e}.t-failing{background:#bc4c00}.t-flaky{background:#8250df}
.t-image-bound{background:#0969da}
.t-passing{background:#1a7f37}.t-skipped{background:#8c959f}.dev-bad{color:#cf222e;font-weight:600}
.dev-good{color:#0969da}.strip{white-space:nowrap}.strip .o{display:inline-block;width:6px;height:12px;
margin-right:1px;vertical-align:middle}.o-pass{background:#1a7f37}.o-fail{background:#cf222e}
.o-skip{background:#8c959f}.o-none{background:#eaeef2}
details.node,details.tests-ok{border:1px solid #ddd;border-radius:4px;margin:4px 0;padding:2px 8px}
details.node>summary,details.tests-ok>summary{cursor:pointer}
"""

#: Runs first, in <head>: errors and CSP violations anywhere later land in <html data-errors>.
SCRIPT = """
(function(){var root=document.documentElement,errs=[];
function rec(m){errs.push(String(m));root.setAttribute('data-errors',JSON.stringify(errs));}
root.setAttribute('data-errors','[]');
window.addEventListener('error',function(e){rec('error: '+(e.message||e.type));});
window.addEventListener('unhandledrejection',function(e){rec('rejection: '+e.reason);});
document.addEventListener('securitypolicyviolation',function(e){rec('csp: '+e.blockedURI);});
document.addEventListener('DOMContentLoaded',function(){
root.setAttribute('data-charts',document.querySelectorAll('svg.trend-chart').length);
openTarget();root.setAttribute('data-ready','1');});
// a chart point or a table row links a run: open (expand) that run's details, not just scroll to them
function openTarget(){var id=decodeURIComponent(location.hash.slice(1));if(!id)return;
var el=document.getElementById(id);if(!el)return;var d=el.tagName==='DETAILS'?el:el.querySelector('details');
if(d){d.open=true;root.setAttribute('data-opened',id);}}
window.addEventListener('hashchange',openTarget);
document.addEventListener('click',function(e){var a=e.target.closest&&e.target.closest('a');
if(a&&(a.getAttribute('href')||'').charAt(0)==='#')setTimeout(openTarget,0);});})();
"""



def page_head(title: str, extra_style: str = "") -> str:
    """``<!DOCTYPE html>`` to ``<body>``: the policy, ``title`` (escaped), the shared style plus ``extra_style``
    (a page's own rules, trusted text), and the watcher script."""
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f"<title>{escape(title)}</title><style>{STYLE}{extra_style}</style><script>{SCRIPT}</script></head><body>")
