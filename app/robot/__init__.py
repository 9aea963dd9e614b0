"""The grid robot (网格管理员机器人): explainable rules over the replica that find needs and gaps
before anyone reports them. Qt-free. See :mod:`app.robot.engine` for a pass and
:mod:`app.robot.views` for what the panel and the CLI show."""
