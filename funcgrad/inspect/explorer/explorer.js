/* funcgrad.explore's page script. It draws the views funcgrad laid out, steps through the forward pass
   and then the backward sweep in the order funcgrad ran it, and shows the numbers of whatever is
   selected. Everything comes from the JSON in <script class="fg-data">; nothing is fetched. */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  // ------------------------------------------------------------------ small helpers

  function el(tag, attrs, parent, text) {
    var node = tag.indexOf("svg:") === 0 ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function fmt(x) {  // six significant digits, as in the panel's tables
    if (x === null || x === undefined) return "–";
    if (x === 0) return "0";
    var a = Math.abs(x);
    return a >= 1e-3 && a < 1e5 ? String(Number(x.toPrecision(6))) : x.toExponential(5);
  }

  function bytes(n) {
    if (!n) return "0 B";
    var units = ["B", "KB", "MB", "GB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }

  // ------------------------------------------------------------------ the explorer

  function Explorer(root, data) {
    this.d = data;
    this.F = data.forward.length;
    this.B = data.backward.length;
    this.t = -1;  // -1: the overview (all values); 0..F-1 forward steps; F..F+B-1 backward steps
    this.sel = null;  // {kind: "value" | "eqn", id}
    this.follow = false;
    this.zoom = 1;
    this.badges = this.collectBadges();
    this.buildFrame(root);
    this.show(data.root);
    var self = this;
    root.tabIndex = 0;
    root.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowRight") self.go(self.t + 1);
      else if (ev.key === "ArrowLeft") self.go(self.t - 1);
      else if (ev.key === "Escape" && self.crumbs.length > 1) self.show(self.crumbs[self.crumbs.length - 2][0]);
    });
  }

  Explorer.prototype.buildFrame = function (root) {
    var self = this;
    var head = el("div", {class: "fg-head"}, root);
    el("h1", {}, head, this.d.title);
    this.crumbBar = el("div", {class: "fg-crumbs"}, head);
    var zoom = el("span", {class: "fg-controls"}, head);
    [["−", "fg-zoom-out", function () { self.zoom /= 1.25; }], ["fit", "fg-fit", function () { self.zoom = self.fitZoom(); }],
     ["+", "fg-zoom-in", function () { self.zoom *= 1.25; }]]
      .forEach(function (b) { el("button", {class: b[1]}, zoom, b[0]).onclick = function () { b[2](); self.renderGraph(); }; });
    var legend = el("span", {class: "fg-legend"}, head);
    [["#dbe4ff", "block (click to open)"], ["#e7eefc", "equation"], ["#fff3bf", "parameter"], ["#cfd4da", "data"],
     ["#ffc9c9", "cost"]].forEach(function (p) { el("i", {style: "background:" + p[0]}, legend); legend.appendChild(document.createTextNode(p[1])); });
    var body = el("div", {class: "fg-body"}, root);
    this.canvas = el("div", {class: "fg-canvas"}, body);
    var panel = el("div", {class: "fg-panel"}, body);
    el("h2", {}, panel, "Sweep");
    var controls = el("div", {class: "fg-controls"}, panel);
    [["overview", "fg-reset", function () { self.go(-1); }], ["◀", "fg-prev", function () { self.go(self.t - 1); }],
     ["▶", "fg-next", function () { self.go(self.t + 1); }], ["backward ▶▶", "fg-backward", function () { self.go(self.F); }]]
      .forEach(function (b) { el("button", {class: b[1], title: b[1].slice(3)}, controls, b[0]).onclick = b[2]; });
    var label = el("label", {}, controls);
    var box = el("input", {type: "checkbox", class: "fg-follow"}, label);
    label.appendChild(document.createTextNode(" open the step's block"));
    box.onchange = function () { self.follow = box.checked; self.go(self.t); };
    this.stepBox = el("div", {class: "fg-step"}, panel);
    el("h2", {}, panel, "Selection");
    this.selBox = el("div", {class: "fg-selection"}, panel);
    el("h2", {}, panel, "Gradient norm by depth");
    this.depthBox = el("div", {class: "fg-depth"}, panel);
    el("h2", {}, panel, "Diagnostics");
    this.diagBox = el("div", {class: "fg-diagnostics"}, panel);
    this.renderDiagnostics();
  };

  // which block or equation each diagnostic marks, so that its box (and every block around it) gets a badge
  Explorer.prototype.collectBadges = function () {
    var marks = {}, d = this.d;
    d.diagnostics.forEach(function (g) {
      var refs = [];
      if (g.eqn !== null) refs = ["e" + g.eqn].concat(d.eqns[g.eqn].path);
      else if (g.block) refs = [g.block];
      refs.forEach(function (r) { (marks[r] = marks[r] || []).push(g); });
    });
    return marks;
  };

  // ------------------------------------------------------------------ stepping

  Explorer.prototype.stepEqn = function (t) {
    if (t < 0) return null;
    return t < this.F ? this.d.forward[t] : this.d.backward[t - this.F].eqn;
  };

  Explorer.prototype.go = function (t) {
    this.t = Math.max(-1, Math.min(t, this.F + this.B - 1));
    var e = this.stepEqn(this.t);
    if (this.follow && e !== null) {
      var path = this.d.eqns[e].path, target = path.length ? this.d.blocks[path[0]].view : this.d.root;
      if (target !== this.viewId) { this.show(target); return; }
    }
    this.render();
  };

  Explorer.prototype.valueKnown = function (v) {
    var val = this.d.values[v];
    if (!val.s) return false;
    if (this.t < 0 || this.t >= this.F || val.from === null) return true;
    var fwd = this.d.eqns[val.from].fwd;
    return fwd !== null && fwd <= this.t;
  };

  Explorer.prototype.ctKnown = function (v) {
    var val = this.d.values[v];
    if (!val.ct) return false;
    return this.t < 0 || (this.t >= this.F && this.t - this.F >= val.ctStep);
  };

  // the summary of the contribution backward step k made to value v's cotangent
  Explorer.prototype.part = function (v, k) {
    var val = this.d.values[v];
    if (!val.parts) return val.ct;
    for (var i = 0; i < val.parts.length; i++) if (val.parts[i][0] === k) return val.parts[i][1];
    return null;
  };

  // ------------------------------------------------------------------ the view

  Explorer.prototype.show = function (viewId) {
    if (viewId !== this.viewId) this.zoom = 1;
    this.viewId = viewId;
    this.view = this.d.views[viewId];
    this.crumbs = this.view.crumbs;
    var self = this;
    this.crumbBar.textContent = "";
    this.crumbs.forEach(function (c, i) {
      if (i) el("span", {class: "fg-sep"}, self.crumbBar, "›");
      var a = el("a", {"data-view": c[0]}, self.crumbBar, c[1]);
      a.onclick = function () { self.show(c[0]); };
    });
    this.render();
  };

  Explorer.prototype.render = function () {
    this.renderGraph();
    this.renderStep();
    this.renderSelection();
    this.renderDepth();
  };

  Explorer.prototype.renderGraph = function () {
    var self = this, v = this.view, lay = v.layout;
    this.canvas.textContent = "";
    var svg = el("svg:svg", {class: "fg-graph", width: lay.w * this.zoom, height: lay.h * this.zoom, viewBox: "0 0 " + lay.w + " " + lay.h}, this.canvas);
    var defs = el("svg:defs", {}, svg);
    var marker = el("svg:marker", {id: "fg-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto"}, defs);
    el("svg:path", {d: "M0,0 L10,5 L0,10 z", fill: "#495057"}, marker);
    v.clusters.forEach(function (c) {
      var box = lay.clusters[c[0]], block = self.d.blocks[c[0]];
      var g = el("svg:g", {class: "fg-cluster", "data-block": c[0]}, svg);
      el("svg:rect", {x: box[0], y: box[1], width: box[2], height: box[3], rx: 6}, g);
      var title = el("svg:text", {x: box[0] + 6, y: box[1] + 12, class: "fg-title"}, g, block.label + " ▸");
      title.onclick = function () { self.show(block.view); };
      el("svg:title", {}, g, block.detail || block.label);
    });
    var current = this.currentRefs();
    v.edges.forEach(function (e, i) {
      var pts = lay.edges[i];
      if (!pts || pts.length < 4) return;
      var d = "M" + pts[0] + "," + pts[1];
      if (lay.curve === "bezier") for (var k = 2; k + 5 < pts.length; k += 6) d += " C" + pts.slice(k, k + 6).join(",");
      else for (var j = 2; j < pts.length; j += 2) d += " L" + pts[j] + "," + pts[j + 1];
      var sel = self.sel && self.sel.kind === "value" && e.values.indexOf(self.sel.id) >= 0;
      var g = el("svg:g", {class: "fg-edge" + (sel ? " fg-selected" : ""), "data-values": e.values.join(" ")}, svg);
      el("svg:path", {d: d, class: "fg-line", "marker-end": "url(#fg-arrow)"}, g);
      el("svg:path", {d: d, class: "fg-hit"}, g).onclick = function () { self.select("value", e.values[0]); };
      var mid = Math.floor(pts.length / 4) * 2, first = self.d.values[e.values[0]];
      var shape = first.type.slice(first.type.indexOf("["));
      el("svg:text", {x: pts[mid] + 4, y: pts[mid + 1]}, g, shape + (e.values.length > 1 ? " +" + (e.values.length - 1) : ""));
      el("svg:title", {}, g, e.values.map(function (k) { return self.d.values[k].name + ": " + self.d.values[k].type; }).join("\n"));
    });
    v.nodes.forEach(function (n) { self.drawNode(svg, n, lay.nodes[n.id], current); });
  };

  // the scale at which the whole view fits the canvas (never larger than life)
  Explorer.prototype.fitZoom = function () {
    var lay = this.view.layout;
    return Math.min(1, (this.canvas.clientWidth - 4) / lay.w, (this.canvas.clientHeight - 4) / lay.h);
  };

  Explorer.prototype.currentRefs = function () {
    var e = this.stepEqn(this.t);
    if (e === null) return {};
    var refs = {};
    refs["e" + e] = true;
    this.d.eqns[e].path.forEach(function (b) { refs[b] = true; });
    return refs;
  };

  Explorer.prototype.drawNode = function (svg, n, box, current) {
    var self = this, x = box[0], y = box[1], w = box[2], h = box[3];
    var selected = this.sel && ((this.sel.kind === "value" && n.ref === "v" + this.sel.id) || (this.sel.kind === "eqn" && n.ref === "e" + this.sel.id) ||
      (this.sel.kind === "value" && n.kind === "tag" && n.main === this.sel.id));
    var cls = "fg-node fg-" + n.kind + (current[n.ref] ? " fg-current" : "") + (selected ? " fg-selected" : "");
    var g = el("svg:g", {class: cls, "data-node": n.id, "data-ref": n.ref, "data-kind": n.kind, "data-label": n.label}, svg);
    var box3 = n.kind === "block" || n.kind === "eqn" || n.kind === "body";
    if (box3 || n.kind === "cost") el("svg:rect", {class: "fg-shape", x: x - w / 2, y: y - h / 2, width: w, height: h, rx: n.kind === "block" ? 8 : 4}, g);
    else el("svg:ellipse", {class: "fg-shape", cx: x, cy: y, rx: w / 2, ry: h / 2}, g);
    var top = box3 ? y - h / 2 + 15 : (n.kind === "cost" ? y + 4 : y - 2);
    el("svg:text", {x: x, y: top, "text-anchor": "middle", "font-size": 12}, g, n.label);
    if (n.kind !== "cost") el("svg:text", {x: x, y: top + 12, "text-anchor": "middle", "font-size": 10, fill: "#495057"}, g, n.sub);
    if (box3 && n.main !== null) this.miniHistogram(g, n.main, x - w / 2 + 6, y + h / 2 - 16, w - 12, 12);
    var marks = this.badges[n.ref];
    if (marks && box3) {
      var severe = marks.some(function (m) { return m.severity === "error"; });
      var b = el("svg:g", {class: "fg-badge" + (severe ? " error" : "")}, g);
      el("svg:circle", {cx: x + w / 2 - 2, cy: y - h / 2 + 2, r: 7}, b);
      el("svg:text", {x: x + w / 2 - 2, y: y - h / 2 + 6, "text-anchor": "middle"}, b, "!");
    }
    var tip = this.tooltip(n);
    if (marks) tip += "\n" + marks.map(function (m) { return "⚠ " + m.message; }).join("\n");
    el("svg:title", {}, g, tip);
    g.onclick = function () {
      if (n.kind === "block") self.show(self.d.blocks[n.ref].view);
      else if (n.kind === "eqn" || n.kind === "body") {
        var e = Number(n.ref.slice(1));
        if (n.kind === "body" && self.sel && self.sel.kind === "eqn" && self.sel.id === e) self.show(self.d.eqns[e].view);
        else self.select("eqn", e);
      } else self.select("value", n.main);
    };
    if (n.kind === "body") g.ondblclick = function () { self.show(self.d.eqns[Number(n.ref.slice(1))].view); };
  };

  Explorer.prototype.tooltip = function (n) {
    if (n.kind === "block") {
      var b = this.d.blocks[n.ref];
      return b.label + " (" + b.n + " equations)" + (b.detail ? "\n" + b.detail : "") + (b.where ? "\n" + b.where : "") +
        "\nkeeps " + bytes(b.kept) + " for the backward pass" + (b.norm !== null ? "\n|dC/d(output)| = " + fmt(b.norm) : "");
    }
    if (n.kind === "eqn" || n.kind === "body" || n.kind === "tag") {
      var e = this.d.eqns[Number(n.ref.slice(1))];
      return e.text + (e.where ? "\n" + e.where : "") + (e.math ? "\nrule: " + e.math : "") + (n.kind === "body" ? "\n(click twice to open)" : "");
    }
    return this.d.values[n.main].name + ": " + this.d.values[n.main].type;
  };

  // a strip of bars: the value's histogram (blue), or in the backward pass its cotangent's (orange)
  Explorer.prototype.miniHistogram = function (g, v, x, y, w, h) {
    var backward = this.t >= this.F, val = this.d.values[v];
    var s = backward ? (this.ctKnown(v) ? val.ct : null) : (this.valueKnown(v) ? val.s : null);
    if (!s || !s.hist || !s.hist.length) {
      el("svg:line", {x1: x, y1: y + h, x2: x + w, y2: y + h, stroke: "#ced4da", "stroke-dasharray": "2 2"}, g);
      return;
    }
    this.bars(g, s.hist, x, y, w, h, backward ? "#e8590c" : "#4c6ef5");
  };

  Explorer.prototype.bars = function (g, hist, x, y, w, h, colour) {
    var top = Math.max.apply(null, hist) || 1, bw = w / hist.length;
    for (var i = 0; i < hist.length; i++) {
      var bh = hist[i] ? Math.max(1, h * hist[i] / top) : 0;
      if (bh) el("svg:rect", {x: x + i * bw, y: y + h - bh, width: Math.max(bw - 0.5, 0.5), height: bh, fill: colour}, g);
    }
  };

  // ------------------------------------------------------------------ the panel

  Explorer.prototype.select = function (kind, id) {
    this.sel = id === null || id === undefined ? null : {kind: kind, id: id};
    this.render();
  };

  Explorer.prototype.renderStep = function () {
    var box = this.stepBox, d = this.d, self = this;
    box.textContent = "";
    var phase = this.t < 0 ? "overview: every value, every cotangent" :
      this.t < this.F ? "forward " + (this.t + 1) + " / " + this.F : "backward " + (this.t - this.F + 1) + " / " + this.B;
    el("div", {class: "fg-phase"}, box, phase);
    var e = this.stepEqn(this.t);
    if (e === null) {
      el("div", {class: "fg-muted"}, box, "▶ steps through the forward pass, then the backward sweep in the order funcgrad runs it.");
      return;
    }
    var eq = d.eqns[e];
    el("div", {class: "fg-code"}, box, eq.text);
    if (eq.where) el("div", {class: "fg-muted"}, box, eq.where + (eq.scope ? "  ·  " + eq.scope : ""));
    if (this.t < this.F) {
      eq.outs.forEach(function (v) { if (v !== null) self.statLine(box, d.values[v].name, d.values[v].s); });
      return;
    }
    var step = d.backward[this.t - this.F];
    el("div", {class: "fg-math", "data-rule": eq.prim}, box, eq.math || "(this rule has no docstring maths)");
    el("h3", {}, box, "cotangents in (dC/d output)");
    step.outs.forEach(function (v) {
      var val = d.values[v];
      self.statLine(box, "dC/d" + val.name, val.ct);
      if (val.parts) {  // a fan-out: the cotangent is the sum of its uses' contributions
        el("div", {class: "fg-part fg-muted"}, box, "= Σ of " + val.parts.length + " contributions (the weighted-sum rule):");
        val.parts.forEach(function (p) {
          var who = p[0] < 0 ? "seed dC/dC = 1" : d.eqns[d.backward[p[0]].eqn].label + " (backward step " + (p[0] + 1) + ")";
          self.statLine(el("div", {class: "fg-part"}, box), "from " + who, p[1]);
        });
      }
    });
    el("h3", {}, box, "contributions out (to each input)");
    if (!step.parts.length) el("div", {class: "fg-muted"}, box, "none: no input is differentiated");
    step.parts.forEach(function (p) {
      self.statLine(box, "→ dC/d" + d.values[p[1]].name + " (input " + p[0] + ")", self.part(p[1], self.t - self.F));
    });
  };

  Explorer.prototype.statLine = function (parent, label, s) {
    var line = el("div", {class: "fg-statline"}, parent);
    if (!s) { line.textContent = label + ": –"; return; }
    line.textContent = label + ": mean " + fmt(s.mean) + ", |·| " + fmt(s.l2) + ", [" + fmt(s.min) + ", " + fmt(s.max) + "]" +
      (s.nan || s.inf ? ", " + s.nan + " NaN, " + s.inf + " Inf" : "");
  };

  Explorer.prototype.renderSelection = function () {
    var box = this.selBox, d = this.d, self = this;
    box.textContent = "";
    if (!this.sel) {
      var vb = this.view && d.blocks[this.viewId];
      if (vb) this.blockInfo(box, vb);
      el("div", {class: "fg-muted"}, box, "Click a box to open it, an equation or an edge or a value to see its numbers.");
      return;
    }
    if (this.sel.kind === "eqn") {
      var eq = d.eqns[this.sel.id];
      el("h3", {}, box, eq.label);
      el("div", {class: "fg-code"}, box, eq.text);
      if (eq.params) el("div", {class: "fg-muted"}, box, eq.params);
      if (eq.where) el("div", {class: "fg-muted"}, box, eq.where);
      if (eq.math) el("div", {class: "fg-math"}, box, eq.math);
      if (eq.note) el("div", {}, box, eq.note);
      if (eq.kept) el("div", {}, box, "keeps " + bytes(eq.kept) + " for the backward pass");
      if (eq.view) { var a = el("a", {href: "#"}, box, "open its program ▸"); a.onclick = function (ev) { ev.preventDefault(); self.show(eq.view); }; }
      eq.outs.forEach(function (v) { if (v !== null) self.valueInfo(box, v); });
      return;
    }
    this.valueInfo(box, this.sel.id);
  };

  Explorer.prototype.blockInfo = function (box, b) {
    el("h3", {}, box, b.label + " (" + b.n + " equations)");
    if (b.detail) el("div", {class: "fg-code"}, box, b.detail);
    el("div", {}, box, "keeps " + bytes(b.kept) + " for the backward pass" + (b.norm !== null ? "; |dC/d(output)| = " + fmt(b.norm) : ""));
  };

  Explorer.prototype.valueInfo = function (box, v) {
    var val = this.d.values[v], wrap = el("div", {class: "fg-value", "data-value": v}, box);
    el("h3", {}, wrap, val.name + "  " + val.type);
    if (!val.s && !val.ct) { el("div", {class: "fg-muted fg-why"}, wrap, val.why || "no numbers (inside a nested program, or not an array)"); return; }
    if (!val.s) el("div", {class: "fg-muted"}, wrap, val.ctIter ? "inside a loop body: one value per iteration" : "inside a nested program");
    else if (this.valueKnown(v)) this.summary(wrap, "value", val.s, "#4c6ef5");
    else el("div", {class: "fg-muted"}, wrap, "not computed yet");
    el("h3", {}, wrap, "dC/d" + val.name + (val.ctIter ? "_t, every iteration t" : ""));
    if (this.ctKnown(v)) {
      this.summary(wrap, "ct", val.ct, "#e8590c");
      if (val.ctIter) this.iterations(wrap, val.ctIter);
    }
    else if (!val.ct) el("div", {class: "fg-muted"}, wrap, val.active ? "no gradient reaches it" :
      "not differentiated: it depends on no differentiated argument, so the sweep computes no cotangent for it");
    else if (this.t < this.F) el("div", {class: "fg-muted ct-pending"}, wrap, "computed by the backward pass");
    else {
      var k = this.t - this.F, got = (val.parts || [[val.ctStep]]).filter(function (p) { return p[0] <= k; }).length;
      el("div", {class: "fg-muted ct-pending"}, wrap, "not complete yet: " + got + " of " + (val.parts ? val.parts.length : 1) + " contributions so far");
    }
  };

  // |dC/dz_t| for each iteration t of a loop: the vanishing-gradient picture of an RNN
  Explorer.prototype.iterations = function (parent, norms) {
    var svg = el("svg:svg", {width: 240, height: 48, class: "fg-iterations"}, parent);
    this.bars(svg, norms.map(function (n) { return n || 0; }), 0, 0, 240, 36, "#e8590c");
    el("svg:text", {x: 0, y: 47, "font-size": 9, fill: "#868e96"}, svg, "t = 0");
    el("svg:text", {x: 240, y: 47, "font-size": 9, fill: "#868e96", "text-anchor": "end"}, svg, "t = " + (norms.length - 1));
    el("div", {class: "fg-muted"}, parent, "|dC/dz_t|₂ per iteration: " + fmt(norms[0]) + " at t = 0, " +
      fmt(norms[norms.length - 1]) + " at t = " + (norms.length - 1));
  };

  Explorer.prototype.summary = function (parent, which, s, colour) {
    var table = el("table", {class: "fg-stats", "data-of": which}, parent);
    var rows = [["shape", "[" + s.shape.join(", ") + "] " + s.dtype], ["mean", fmt(s.mean)], ["std", fmt(s.std)], ["min", fmt(s.min)],
      ["max", fmt(s.max)], ["l2", fmt(s.l2)], ["zeros", fmt(s.zeros)], ["nan", String(s.nan)], ["inf", String(s.inf)]];
    var names = {l2: "|·|₂", zeros: "fraction of zeros", nan: "NaN", inf: "Inf"};
    rows.forEach(function (r) {
      var tr = el("tr", {"data-stat": r[0]}, table);
      el("th", {}, tr, names[r[0]] || r[0]);
      el("td", {}, tr, r[1]);
    });
    if (s.hist && s.hist.length) {
      var svg = el("svg:svg", {width: 240, height: 48, class: "fg-hist"}, parent);
      this.bars(svg, s.hist, 0, 0, 240, 36, colour);
      el("svg:text", {x: 0, y: 47, "font-size": 9, fill: "#868e96"}, svg, fmt(s.min));
      el("svg:text", {x: 240, y: 47, "font-size": 9, fill: "#868e96", "text-anchor": "end"}, svg, fmt(s.max));
      if (s.hist_of < s.n) el("div", {class: "fg-muted"}, parent, "histogram of " + s.hist_of + " of " + s.n + " entries, evenly strided");
    }
    if (s.heat) this.heatMap(parent, s.heat);
  };

  // the value as a matrix (rows: leading axes, columns: the last axis), blue < 0 < red
  Explorer.prototype.heatMap = function (parent, heat) {
    var scale = Math.max(1, Math.min(8, Math.floor(240 / heat.cols)));
    var canvas = el("canvas", {width: heat.cols * scale, height: heat.rows * scale, class: "fg-heat"}, parent);
    var ctx = canvas.getContext("2d"), raw = atob(heat.data), diverging = heat.lo < 0 && heat.hi > 0;
    for (var i = 0; i < raw.length; i++) {
      var q = raw.charCodeAt(i), f = (q - 1) / 254, rgb;
      if (q === 0) rgb = [230, 0, 230];  // NaN or Inf
      else if (diverging) rgb = f < 0.5 ? [Math.round(510 * f), Math.round(510 * f), 255] : [255, Math.round(510 * (1 - f)), Math.round(510 * (1 - f))];
      else rgb = [Math.round(255 * (1 - f)), Math.round(255 * (1 - 0.6 * f)), 255];
      ctx.fillStyle = "rgb(" + rgb.join(",") + ")";
      ctx.fillRect((i % heat.cols) * scale, Math.floor(i / heat.cols) * scale, scale, scale);
    }
    el("div", {class: "fg-muted"}, parent, "heat-map of " + heat.rows + " × " + heat.cols + " entries, from " + fmt(heat.lo) + " to " + fmt(heat.hi));
  };

  // |dC/d(output)| of each box of this view, on a log scale: vanishing or exploding gradients across depth
  Explorer.prototype.renderDepth = function () {
    var box = this.depthBox, d = this.d, self = this;
    box.textContent = "";
    var rows = [];
    this.view.nodes.forEach(function (n) {
      var item = n.kind === "block" ? d.blocks[n.ref] : (n.kind === "eqn" || n.kind === "body") ? d.eqns[Number(n.ref.slice(1))] : null;
      if (item && item.norm !== null && item.norm !== undefined) rows.push([n, item]);
    });
    if (!rows.length) { el("div", {class: "fg-muted"}, box, "no gradient reaches this view"); return; }
    var logs = rows.map(function (r) { return r[1].norm > 0 ? Math.log10(r[1].norm) : null; }).filter(function (x) { return x !== null; });
    var lo = Math.min.apply(null, logs) - 1, hi = Math.max.apply(null, logs);
    var svg = el("svg:svg", {width: 360, height: rows.length * 16 + 4, class: "fg-depth-chart"}, box);
    rows.forEach(function (r, i) {
      var norm = r[1].norm, f = norm > 0 ? (Math.log10(norm) - lo) / Math.max(hi - lo, 1e-9) : 0;
      var g = el("svg:g", {"data-ref": r[0].ref}, svg);
      el("svg:text", {x: 0, y: i * 16 + 12, "font-size": 10}, g, r[0].label.slice(0, 16));
      el("svg:rect", {x: 96, y: i * 16 + 3, width: Math.max(1, 120 * f), height: 10, fill: self.badges[r[0].ref] ? "#f08c00" : "#adb5bd"}, g);
      el("svg:text", {x: 222, y: i * 16 + 12, "font-size": 10}, g, fmt(norm) + (r[1].kept ? "  " + bytes(r[1].kept) : ""));
    });
    el("div", {class: "fg-muted"}, box, "bars: log |dC/d(output)| of each box, in program order; then the bytes it keeps");
  };

  Explorer.prototype.renderDiagnostics = function () {
    var box = this.diagBox, d = this.d, self = this;
    var kept = d.kept;
    el("div", {}, box, "the backward pass keeps " + bytes(kept.total) + " of values computed forward (+ " + bytes(kept.arguments) + " of arguments)" +
      (kept.error ? "; " + kept.error : ""));
    if (!d.diagnostics.length) el("div", {class: "fg-muted fg-healthy"}, box, "no dead units, saturation, vanishing or exploding gradients, or NaN/Inf found");
    var lim = d.limits;  // the thresholds (funcgrad/inspect/explorer/diagnostics.py)
    if (lim) el("div", {class: "fg-muted fg-limits"}, box, "flagged: dead units over " + lim.dead_share * 100 + "% of a layer (at least " +
      lim.min_examples + " examples); saturated over " + lim.saturated_share * 100 + "% of entries; a block's gradient norm under " +
      lim.depth_ratio + " or over " + 1 / lim.depth_ratio + " times the last block's");
    d.diagnostics.forEach(function (g) {
      var item = el("div", {class: "fg-diag " + g.severity, "data-kind": g.kind}, box, g.message);
      item.onclick = function () {
        var target = g.eqn !== null ? (d.eqns[g.eqn].path.length ? d.blocks[d.eqns[g.eqn].path[0]].view : d.root) : (g.block ? d.blocks[g.block].view : d.root);
        self.sel = g.value !== null ? {kind: "value", id: g.value} : (g.eqn !== null ? {kind: "eqn", id: g.eqn} : null);
        self.show(target);
      };
    });
  };

  function mount(root) {
    var script = root.parentNode.querySelector("script.fg-data");
    root.explorer = new Explorer(root, JSON.parse(script.textContent));
  }

  document.querySelectorAll(".fg-explorer").forEach(mount);
})();
