"""The inline style sheet and script of the HTML report (allowed by the page's CSP hashes)."""

CSS = """
:root{--c2s:#1f6feb;--s2c:#a0307a;--bad:#c62828;--ok:#2e7d32;--warn:#b26a00;--dim:#667;
--bg:#fafafa;--card:#fff;--line:#dde}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans CJK SC","PingFang SC",
"Microsoft YaHei",sans-serif;margin:0;background:var(--bg);color:#1b1b1f}
main{max-width:1100px;margin:0 auto;padding:1.2em 1.2em 4em}
h1{font-size:1.5em;margin:.2em 0}
h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line)}
code,.mono,.hex,.tree{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace}
.result{display:inline-block;padding:.15em .6em;border-radius:4px;font-weight:600;color:#fff}
.result.ok{background:var(--ok)}.result.failed{background:var(--bad)}
.errline{color:var(--bad);font-weight:600;margin:.4em 0}
.banner{border:2px solid var(--warn);background:#fff4e0;color:#5a3500;border-radius:6px;
padding:.6em .9em;margin:.8em 0;font-weight:600}
.banner .why{font-weight:400;display:block;margin-top:.2em}
.failure{border:2px solid var(--bad);background:#fff5f5;border-radius:6px;padding:.6em .9em;
margin:.8em 0}
.failure h2{margin:.1em 0 .4em;border:0;color:var(--bad)}
.failure th{text-align:left;padding:.1em 1em .1em 0;color:#522;vertical-align:top;font-weight:600}
table.params{border-collapse:collapse;margin:.6em 0}
table.params th{text-align:left;padding:.15em 1.2em .15em 0;color:var(--dim);font-weight:500;
vertical-align:top}
table.params td{padding:.15em 0}
table.params td.warn{color:var(--warn);font-weight:600}
.badge{display:inline-block;font-size:.8em;padding:0 .45em;border-radius:3px;
border:1px solid var(--line);background:#f3f3f6;color:#334;margin-left:.3em;white-space:nowrap}
.badge.plain{background:#fff8e1;border-color:#f0d890}
.badge.enc{background:#e8f5e9;border-color:#a5d6a7}
.badge.alert{background:var(--bad);color:#fff;border-color:var(--bad)}
svg.seq{display:block;max-width:100%;height:auto;margin:.4em 0 1em;background:#fff;
border:1px solid var(--line);border-radius:6px}
svg.seq .lane{stroke:#99a;stroke-width:2}
svg.seq .lanename{font-weight:700;font-size:14px}
svg.seq .c{fill:var(--c2s)}svg.seq .s{fill:var(--s2c)}
svg.seq line.c2s{stroke:var(--c2s);stroke-width:2}svg.seq line.s2c{stroke:var(--s2c);stroke-width:2}
svg.seq line.bad{stroke:var(--bad);stroke-width:2.5;stroke-dasharray:6 3}
svg.seq polygon.c2s{fill:var(--c2s)}svg.seq polygon.s2c{fill:var(--s2c)}svg.seq polygon.bad{fill:var(--bad)}
svg.seq text{font-size:12.5px;fill:#223}
svg.seq text.t{fill:var(--dim);font-size:11.5px}
svg.seq text.rtt{fill:#555;font-size:11.5px;font-style:italic}
svg.seq text.badtext{fill:var(--bad);font-weight:700}
svg.seq path.rtt{stroke:#bbb;fill:none}
.lanes{display:flex;justify-content:space-between;font-weight:600;margin:.8em 0 .3em;
padding:0 .3em}
.lanes .c{color:var(--c2s)}.lanes .s{color:var(--s2c)}
.card{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--dim);
border-radius:6px;padding:.6em .8em;margin:.55em 0;width:88%}
.card.c2s{border-left-color:var(--c2s);margin-right:auto}
.card.s2c{border-left-color:var(--s2c);margin-left:auto}
.card.alert,.card.error{border-left-color:var(--bad);background:#fff5f5;width:100%}
.card.alert.benign{border-left-color:#e0a800;background:#fffbea}
.card .head{display:flex;flex-wrap:wrap;align-items:baseline;gap:.2em .6em}
.card .name{font-weight:700;font-size:1.08em}
.c2s .name,.c2s .dir{color:var(--c2s)}.s2c .name,.s2c .dir{color:var(--s2c)}
.alert .name,.error .name{color:var(--bad)}
.t{color:var(--dim);font-size:.85em;min-width:5.5em}
.details{margin:.25em 0;white-space:pre-wrap;overflow-wrap:anywhere}
.explain{color:#445;font-style:italic;margin:.25em 0}
.note{color:var(--dim);font-size:.85em;margin:.15em 0 .15em .4em}
.note.record{font-family:ui-monospace,Menlo,Consolas,monospace}
.note.secret::before{content:"\\25C6  ";color:#b8860b}
body.hide-local .note{display:none}
details{margin-top:.4em}
summary{cursor:pointer;color:var(--dim)}
.bytes{display:flex;flex-wrap:wrap;gap:1em;margin-top:.4em}
.hex{font-size:12.5px;line-height:1.75;width:49ch;word-spacing:0;flex:none;
overflow-wrap:anywhere}
.hex .f{border-radius:2px}
.hex .f.d0{background:hsl(var(--h),70%,88%)}
.hex .f.d1{box-shadow:inset 0 -2px hsl(var(--h),55%,55%)}
.hex .f.d2{box-shadow:inset 0 -2px hsl(var(--h),55%,40%);background:hsla(var(--h),60%,75%,.35)}
.hex .f.d3,.hex .f.d4,.hex .f.d5{text-decoration:underline dotted}
.hex .gap{color:#99a}
.hex .f.len{color:#556;font-style:italic}
.hex .fold{display:none}
.hex .open>.fold{display:inline}
.hex .open>.unfold{display:none}
.unfold{font:inherit;font-size:11px;border:1px solid #99a;background:#fff;border-radius:3px;
padding:0 .3em;margin:0 .2em;cursor:pointer;color:#334}
.h0{--h:210}.h1{--h:130}.h2{--h:35}.h3{--h:280}.h4{--h:0}.h5{--h:175}
.hex .f.hl,.tree .hl{outline:2px solid #111;background:#ffe082!important}
.tree{font-size:12.5px;flex:1;min-width:22em;margin:0;padding-left:0;list-style:none}
.tree ul{list-style:none;padding-left:1.2em;margin:0}
.tree li>span{cursor:default}
.tree .off{color:var(--dim)}.tree .v{color:#0b6e69}
.tree .x{color:#778;font-style:italic;font-family:system-ui,sans-serif;font-size:11.5px}
.status{position:sticky;bottom:0;background:#263238;color:#fff;padding:.3em .6em;
font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;min-height:1.8em;
border-radius:4px;margin-top:.4em}
table.certs,table.ks{border-collapse:collapse;margin:.4em 0;font-size:.92em}
table.certs th,table.certs td,table.ks th,table.ks td{border:1px solid var(--line);
padding:.2em .5em;text-align:left;vertical-align:top}
table.ks td.secret{font-family:ui-monospace,Menlo,Consolas,monospace;font-weight:600;color:#7a5a00}
table.ks td.protects{color:var(--ok)}
.legend li{margin:.1em 0}
.toolbar{margin:.6em 0}
.toolbar button,.toolbar label{font:inherit;font-size:.9em;margin-right:.8em}
footer{color:var(--dim);font-size:.85em;margin-top:3em}
"""

JS = """
(function(){
  var bar=document.getElementById('status');
  function mark(id,on){
    var els=document.querySelectorAll('[data-f="'+id+'"]');
    for(var i=0;i<els.length;i++){els[i].classList.toggle('hl',on);}
  }
  var cur=null;
  function over(ev){
    var el=ev.target.closest?ev.target.closest('[data-f]'):null;
    var id=el?el.getAttribute('data-f'):null;
    if(id===cur){return;}
    if(cur){mark(cur,false);}
    cur=id;
    if(id){mark(id,true);bar.textContent=el.getAttribute('title')||'';}
  }
  document.addEventListener('mouseover',over);
  document.addEventListener('click',function(ev){
    var b=ev.target.closest?ev.target.closest('.unfold'):null;
    if(b){b.parentNode.classList.add('open');ev.preventDefault();}
  });
  document.getElementById('expand').addEventListener('click',function(){
    var d=document.querySelectorAll('details.raw');
    var open=!d.length||!d[0].open;
    for(var i=0;i<d.length;i++){d[i].open=open;}
  });
  document.getElementById('local').addEventListener('change',function(ev){
    document.body.classList.toggle('hide-local',!ev.target.checked);
  });
})();
"""
