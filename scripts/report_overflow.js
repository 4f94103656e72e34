// Injected by check-report.sh into a copy of the report (never into the report itself):
// lists every element of <main> that sticks out of main's content box or whose content
// is wider than its own box, i.e. what a reader would find cut off or spilling sideways
// at this window width. The list (one line per outermost offender, "ok" when empty) is
// written into a <pre> element with id overflow-result, which `chromium --dump-dom` carries
// out.
(function () {
    var view = document.documentElement.clientWidth;
    var main = document.querySelector("main");
    var style = getComputedStyle(main);
    var edge = Math.min(view, main.getBoundingClientRect().right - parseFloat(style.paddingRight));
    var problems = [];
    var offenders = [];
    function describe(el) {
        var text = (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 60);
        var name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className && typeof el.className === "string" ? "." + el.className.trim().replace(/\s+/g, ".") : "");
        return name + ' "' + text + '"';
    }
    if (document.documentElement.scrollWidth > view) {
        problems.push("the page is " + document.documentElement.scrollWidth + " px wide in a " + view + " px window");
    }
    var all = main.querySelectorAll("*");
    for (var i = 0; i < all.length; i++) {
        var el = all[i];
        if (el.closest("svg") !== null && el.tagName.toLowerCase() !== "svg") continue;
        if (offenders.some(function (o) { return o.contains(el); })) continue;
        var box = el.getBoundingClientRect();
        if (box.width === 0 && box.height === 0) continue;
        if (box.right > edge + 1) {
            offenders.push(el);
            problems.push(describe(el) + " reaches x = " + Math.round(box.right) + " px, past the content edge at " + Math.round(edge) + " px");
        } else if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
            offenders.push(el);
            problems.push(describe(el) + " holds content " + el.scrollWidth + " px wide in a box of " + el.clientWidth + " px");
        }
    }
    var out = document.createElement("pre");
    out.id = "overflow-result";
    out.textContent = problems.length === 0 ? "ok" : problems.join("\n");
    document.body.appendChild(out);
})();
