"""What people read: the prep data report (`data_report`), the pull-request report
(`pullrequest`) with its markdown tables (`markdown`), flipped examples (`flips`) and
charts (`charts`), the escaping that keeps data inert in markdown (`escape`), and the
sticky pull-request comment (`comment`).

May import: config, data, evaluate.
"""
