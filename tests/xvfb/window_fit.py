"""Run under a real X server (tests/test_window_fit.py starts it with xvfb-run): open the main window as a user
would, report the screen, the window's frame and every dock's rectangle on the screen as JSON on stdout.

`python window_fit.py first` opens it fresh; `resize-and-close` also makes the Controls dock wider and closes
(the layout is saved); `second` opens again (the layout is restored); `reset` opens and uses View > Reset layout.
"""
import json
import sys


def main():
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from workbench.app import MainWindow

    step = sys.argv[1]
    w = MainWindow(runs_dir=sys.argv[2])
    w.show()
    out = {}

    def report():
        scr = app.primaryScreen().availableGeometry()
        out["screen"] = [scr.x(), scr.y(), scr.width(), scr.height()]
        f = w.frameGeometry()
        out["frame"] = [f.x(), f.y(), f.width(), f.height()]
        docks = {}
        for name, d in w.docks.items():
            if not d.isVisible():
                continue
            top_left = d.mapToGlobal(d.rect().topLeft())
            docks[name] = [top_left.x(), top_left.y(), d.width(), d.height()]
        arena = w.arena
        p = arena.mapToGlobal(arena.rect().topLeft())
        docks["arena"] = [p.x(), p.y(), arena.width(), arena.height()]
        out["docks"] = docks
        # the panels that scroll rather than squash: their content's height, and how many columns the curves use
        out["content"] = {"Mixer": w.mixer.height(), "curves_columns": w.curves.columns,
                          "curves_rows_height": w.curves.height() / max(w.curves.rows(), 1)}
        out["view_menu"] = [a.text() for a in w.view_menu.actions() if a.text()]

    def act():
        if step == "resize-and-close":
            from PySide6.QtCore import Qt

            w.resizeDocks([w.docks["Controls"]], [w.docks["Controls"].width() + 60], Qt.Horizontal)
            app.processEvents()
        if step == "reset":
            [a for a in w.view_menu.actions() if a.text() == "Reset layout"][0].trigger()
            app.processEvents()
        QTimer.singleShot(500, finish)

    def finish():
        report()
        print(json.dumps(out), flush=True)
        w.close()
        app.quit()

    QTimer.singleShot(1500, act)
    app.exec()


if __name__ == "__main__":
    main()
